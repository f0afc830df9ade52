"""The aspect vocabulary of a shop, learned from its own review text.

Which words name an *attribute* of a product ("fabric", "colour", "length", "scent",
"lather") and which *describe* one ("soft", "thin", "sheer", "boxy", "watery", "greasy")
differs from shop to shop, so both lists are learned from how reviewers write:

* attribute nouns are the subjects of descriptive sentences (``the fabric is ...``,
  ``the scent was ...``) -- minus product nouns, which reviewers point at with "this"
  far more often than they describe them (``this dress``, ``this shampoo``);
* descriptors are what follows a copula (``... is soft``, ``... feels so thin``) and
  is gradable (it also follows "very", "so", "too": participles and nouns do not, "is
  sized", "was washed", "is online"), minus adverbs and comparatives of known words
  ("perfectly", "barely", "smaller"), minus words mostly used otherwise ("I washed it")
  or said of the reviewer ("I'm tall", "I am petite").

English function words and generic verdicts ("great", "love", "perfect") are never
aspects on their own (:data:`GENERIC`); they still qualify a noun ("great price").
Each learned word needs :func:`min_count` occurrences (0.05 % of reviews, at least 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

COPULA = r"(?:is|was|are|were|feels|felt|looks|looked|seems|seemed|smells|smelled|smelt)"
INTENSIFIER = (
    r"(?:very|so|really|too|a bit|a little|super|quite|extremely|pretty|rather|slightly|"
    r"kind of|somewhat|incredibly|nice and|way|much|just|definitely|surprisingly)"
)
# Degree words go with gradable adjectives ("very soft", "so sheer"), not with verbs,
# participles or nouns ("is sized", "was washed", "is online").
DEGREE = r"(?:very|so|too|extremely|super|quite|incredibly|fairly|somewhat|overly)"
DETERMINER = r"(?:the|its|my|these|those|their|this|that|her|his|our)"
# A noun pointed at with "this" this many times per description is the product itself.
PRODUCT_NOUN_RATIO = 1.5
MIN_COUNT_SHARE = 0.0005
MIN_PRODUCT_SHARE = 0.02
# A descriptor is used as one (after a copula) in at least this share of its occurrences:
# "soft" 48 %, while "washed" is mostly a verb ("I washed it").
PREDICATE_SHARE = 0.1
# Words said of the reviewer ("I'm tall", "I am petite") this often are not the product's.
REVIEWER_SHARE = 0.2
MIN_COUNT_FLOOR = 3

# Words that are never an aspect by themselves: verdicts, feelings, fillers, verbs of
# buying and wearing. (English, not a shop's vocabulary.)
GENERIC = frozenset((
    "love", "loved", "loves", "like", "liked", "likes", "great", "perfect", "beautiful",
    "gorgeous", "lovely", "amazing", "awesome", "wonderful", "fabulous", "fantastic",
    "excellent", "stunning", "cute", "adorable", "nice", "pretty", "good", "best", "better",
    "fine", "okay", "ok", "happy", "pleased", "excited", "disappointed", "disappointing",
    "unhappy", "sad", "glad", "bad", "worst", "worse", "terrible", "horrible", "awful", "poor",
    "wrong", "right", "sure", "worried", "afraid", "surprised", "impressed", "obsessed",
    "thrilled", "super", "really", "very", "definitely", "absolutely", "actually", "exactly",
    "totally", "honestly", "also", "still", "even", "well", "way", "just", "much", "more",
    "less", "lot", "bit", "little", "one", "thing", "things", "item", "product", "piece",
    "purchase", "order", "ordered", "bought", "buy", "buying", "returned", "returning", "return",
    "received", "got", "get", "getting", "made", "make", "worth", "going", "able", "used",
    "using", "use", "sold", "looking", "wearing", "wear", "worn", "hoping", "trying", "tried",
    "wanted", "want", "thinking", "think", "say", "said", "coming", "stuck", "different", "same",
    "usual", "normal", "regular", "typical", "available", "expecting", "supposed", "becoming",
    "only", "almost", "nothing", "something", "everything", "anything", "recommend",
    "recommended", "highly", "overall", "simply", "true", "pictured", "shown", "described",
    "advertised", "online", "maybe", "perhaps", "probably", "close",
))  # fmt: skip
STOP = frozenset(ENGLISH_STOP_WORDS) | GENERIC | {"it's", "i'm", "don't", "doesn't", "can't"}


@dataclass(frozen=True)
class AspectVocabulary:
    """Learned attribute nouns and descriptors (see the module docstring).

    Attributes
    ----------
    nouns : tuple of str
        Attribute nouns, most frequent first.
    descriptors : tuple of str
        Descriptive words, most frequent first.
    product_nouns : tuple of str
        Nouns recognised as the products themselves (kept out of ``nouns``).
    singular : dict
        Plural -> singular for learned nouns whose singular also occurs.
    """

    nouns: tuple[str, ...]
    descriptors: tuple[str, ...]
    product_nouns: tuple[str, ...]
    singular: dict[str, str]


def min_count(reviews: int) -> int:
    """Occurrences a word needs to enter the vocabulary, for a shop of ``reviews`` reviews."""
    return max(MIN_COUNT_FLOOR, round(reviews * MIN_COUNT_SHARE))


def learn_vocabulary(
    norm: pl.Series, reviews: int, products: pl.Series | None = None
) -> AspectVocabulary:
    """Learn the attribute nouns and descriptors of normalised review sentences.

    Parameters
    ----------
    norm : polars.Series
        Normalised sentences (:func:`ml.text.sentences.normalise`).
    reviews : int
        Number of reviews they come from (scales the minimum count).
    products : polars.Series, optional
        The product of each sentence. An attribute is described across the catalogue; a
        noun described in the reviews of fewer than :data:`MIN_PRODUCT_SHARE` of the
        products (at least 3) names a kind of product ("moisturiser" in a general shop).

    Returns
    -------
    AspectVocabulary
    """
    threshold = min_count(reviews)
    subjects = _counts(norm, rf"\b{DETERMINER} ([a-z]+) {COPULA}\b", rf" ([a-z]+) {COPULA}$")
    pointed = _counts(norm, r"\bthis ([a-z]+)\b", r"([a-z]+)$")
    predicates = _counts(norm, rf"\b{COPULA} (?:not )?(?:{INTENSIFIER} )?([a-z]+)\b", r"([a-z]+)$")
    candidates = subjects.join(pointed, on="word", how="left", suffix="_this").fill_null(0)
    is_product = pl.col("count_this") >= PRODUCT_NOUN_RATIO * pl.col("count")
    usable = (pl.col("count") >= threshold) & ~pl.col("word").is_in(sorted(STOP))
    usable = usable & (pl.col("word").str.len_chars() > 2)
    if products is not None:
        spread = _product_spread(norm, products)
        candidates = candidates.join(spread, on="word", how="left").fill_null(0)
        needed = max(3, round(MIN_PRODUCT_SHARE * products.n_unique()))
        is_product = is_product | (pl.col("products") < needed)
    nouns = candidates.filter(usable & ~is_product)["word"].to_list()
    product_nouns = candidates.filter(usable & is_product)["word"].to_list()
    descriptors = predicates.filter(usable)["word"].to_list()
    # A word that is mostly a subject is a noun ("the colour is"), not a descriptor.
    descriptors = [w for w in descriptors if w not in set(nouns) | set(product_nouns)]
    words = _counts(norm, r"[a-z]+", r"([a-z]+)")
    known = set(words.filter(pl.col("count") >= 2)["word"])
    graded = _counts(norm, rf"\b{DEGREE} ([a-z]+)\b", r"([a-z]+)$")
    gradable = set(graded.filter(pl.col("count") >= max(2, threshold // 2))["word"])
    said_of_reviewer = _counts(
        norm, rf"\b(?:i am|i'm|im) (?:{INTENSIFIER} )?([a-z]+)\b", r"([a-z]+)$"
    )
    predicate_counts = dict(predicates.iter_rows())
    word_counts = dict(words.iter_rows())
    reviewer = {
        w
        for w, n in said_of_reviewer.iter_rows()
        if n >= REVIEWER_SHARE * predicate_counts.get(w, n)
    }
    descriptors = [
        w
        for w in descriptors
        if w in gradable
        and w not in reviewer
        and not _derived(w, known)
        and predicate_counts[w] >= PREDICATE_SHARE * word_counts.get(w, 0)
    ]
    singular = {w: w[:-1] for w in nouns if w.endswith("s") and w[:-1] in set(nouns)}
    nouns = [w for w in nouns if w not in singular]
    return AspectVocabulary(tuple(nouns), tuple(descriptors), tuple(product_nouns), singular)


def _derived(word: str, known: set[str]) -> bool:
    """True for adverbs and comparatives of a known word: perfectly, barely, smaller, bigger."""
    stems = []
    if word.endswith("ly"):
        stems += [word[:-2], word[:-2] + "e", word[:-4]]  # perfect-ly, bar-ely, basic-ally
    if word.endswith("er"):
        stems += [word[:-2], word[:-1], word[:-3], word[:-3] + "y"]  # small-er, large-r, bigg-er
    return any(len(stem) > 2 and stem in known for stem in stems)


def _product_spread(norm: pl.Series, products: pl.Series) -> pl.DataFrame:
    """Per subject noun, the number of distinct products whose reviews describe it."""
    subjects = (
        pl.DataFrame({"norm": norm, "product": products})
        .select(
            "product",
            pl.col("norm").str.extract_all(rf"\b{DETERMINER} ([a-z]+) {COPULA}\b").alias("m"),
        )
        .explode("m")
        .drop_nulls("m")
        .select("product", pl.col("m").str.extract(rf" ([a-z]+) {COPULA}$").alias("word"))
    )
    return subjects.group_by("word").agg(pl.col("product").n_unique().alias("products"))


def _counts(norm: pl.Series, pattern: str, word: str) -> pl.DataFrame:
    """Counts of the word captured by ``word`` in every match of ``pattern``, descending."""
    matches = norm.str.extract_all(pattern).explode().drop_nulls()
    words = matches.str.extract(word).drop_nulls().rename("word")
    return (
        words.value_counts(sort=False)
        .sort(["count", "word"], descending=[True, False])
        .select("word", pl.col("count").cast(pl.Int64))
    )
