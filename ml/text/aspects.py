"""Per product: what customers praise and complain about, with counts and an example each.

Three parts work together (the measured baseline, yake keyphrases + sentence sentiment,
gave every clothing product the same single words and never found "too short", whose
wording is neutral):

1. phrase extraction (:mod:`ml.text.aspect_phrases`): templates that find the phrases
   marketers use -- "runs small", "true to size", "too short", "thin fabric", "soft",
   "colour as pictured", "arrived broken" -- with negation and spelling variants merged;
2. an aspect vocabulary learned from the shop's own text (:mod:`ml.text.aspect_lexicon`):
   which nouns are attributes and which words describe them, so "fabric" alone or "dress"
   is never an aspect, while "thin fabric" and "too much fabric" are two different ones;
3. the rating of the review each phrase comes from: across the shop, a phrase whose reviews
   rate significantly above the shop's average is *praise*, one whose reviews are
   significantly more often 1-3 stars a *complaint*, neither: not an aspect
   (:func:`aspect_polarity`). Fit and size phrases get their polarity this way although
   their words are neutral.

Per product, variants of one aspect are shown once (their family: "soft", "soft fabric"
and "the fabric is soft" count as "soft"), under the product's most used wording; mentions
count distinct reviews; a product lists an aspect only if at least one of its own reviews
that mention it agrees with the aspect's polarity (a complaint in a 1-3 star review). The
example is one such sentence (contact details masked), preferably one that uses the shown
wording, 30-200 characters, from the review body, the shortest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.text.aspect_lexicon import AspectVocabulary, learn_vocabulary, min_count
from ml.text.aspect_phrases import phrase, templates
from ml.text.sentences import review_sentences, scrub
from ml.text.sentiment import vader_compound

PRAISE, COMPLAINT = "praise", "complaint"
ASPECT_STRUCT = pl.Struct({"aspect": pl.String, "mentions": pl.Int64, "example": pl.String})


@dataclass(frozen=True)
class AspectConfig:
    """Thresholds of aspect extraction.

    Attributes
    ----------
    max_aspects : int
        Praised and complaint aspects listed per product (each).
    min_mentions : int
        Reviews of a product that must mention an aspect for it to be listed.
    min_z : float
        Shop-wide |z| of an aspect's mean review rating against the shop's: below it the
        phrase is not polarised enough to be praise or a complaint.
    example_chars : (int, int)
        Preferred length of an example sentence.
    """

    max_aspects: int = 5
    min_mentions: int = 2
    min_z: float = 2.0
    example_chars: tuple[int, int] = (30, 200)


@dataclass(frozen=True)
class AspectLexicon:
    """A shop's aspect vocabulary and each aspect's polarity.

    Attributes
    ----------
    vocabulary : AspectVocabulary
    polarity : polars.DataFrame
        ``aspect, family, reviews, mean_rating, z, polarity`` (praise / complaint) of
        every aspect polarised enough to be listed.
    """

    vocabulary: AspectVocabulary
    polarity: pl.DataFrame


def learn_aspect_lexicon(
    reviews: pl.DataFrame, config: AspectConfig | None = None, sentences: pl.DataFrame | None = None
) -> AspectLexicon:
    """Learn vocabulary and aspect polarities from a shop's reviews.

    Parameters
    ----------
    reviews : polars.DataFrame
        ``review_id, product_id, rating, title, body``.
    config : AspectConfig, optional
    sentences : polars.DataFrame, optional
        :func:`ml.text.sentences.review_sentences` of ``reviews``, if already computed.
    """
    config = config or AspectConfig()
    sentences = review_sentences(reviews) if sentences is None else sentences
    vocabulary = learn_vocabulary(sentences["norm"], reviews.height, sentences["product_id"])
    mentions = find_mentions(sentences, vocabulary)
    return AspectLexicon(vocabulary, aspect_polarity(mentions, reviews, config))


def find_mentions(sentences: pl.DataFrame, vocabulary: AspectVocabulary) -> pl.DataFrame:
    """Every aspect phrase in every sentence.

    Returns
    -------
    polars.DataFrame
        The sentence columns plus ``aspect`` and ``family``; one row per distinct aspect
        per sentence. A bare descriptor ("soft") is dropped where the same sentence has a
        fuller phrase of its family ("soft fabric").
    """
    found = []
    for template in templates(vocabulary):
        matches = (
            sentences.select(
                "review_id",
                "sentence_no",
                pl.col("norm").str.extract_all(template.pattern.pattern).alias("match"),
            )
            .explode("match")
            .drop_nulls("match")
        )
        phrased = {m: phrase(template, m, vocabulary) for m in matches["match"].unique().to_list()}
        table = pl.DataFrame(
            [(m, p.aspect, p.family) for m, p in phrased.items() if p is not None],
            schema={"match": pl.String, "aspect": pl.String, "family": pl.String},
            orient="row",
        )
        found.append(
            matches.join(table, on="match", how="inner").select(
                "review_id",
                "sentence_no",
                "aspect",
                "family",
                pl.lit(template.name).alias("template"),
            )
        )
    mentions = pl.concat(found).unique(["review_id", "sentence_no", "aspect"], keep="first")
    fuller = (pl.col("template") != "descriptor").any().over(["review_id", "sentence_no", "family"])
    mentions = mentions.filter((pl.col("template") != "descriptor") | ~fuller)
    return sentences.join(mentions.drop("template"), on=["review_id", "sentence_no"], how="inner")


def aspect_polarity(
    mentions: pl.DataFrame, reviews: pl.DataFrame, config: AspectConfig
) -> pl.DataFrame:
    """Praise or complaint per aspect, from the ratings of the reviews that mention it.

    Praise: the mean rating of the aspect's reviews is ``min_z`` standard errors above the
    shop's (and they are not 1-3 stars unusually often). Complaint: their mean rating is
    ``min_z`` standard errors below the shop's, or their share of 1-3 star reviews is that
    far above the shop's, with at least two such reviews ("runs large" lowers ratings
    without making them bad). A phrase whose own words say the opposite (VADER:
    "pleasant", "nice scent" cannot be complaints) is dropped.
    """
    ratings = reviews["rating"].cast(pl.Float64)
    mean, std = float(ratings.mean() or 0.0), float(ratings.std() or 0.0)
    low_share = float((ratings <= 3).mean() or 0.0)
    per_review = (
        mentions.unique(["review_id", "aspect"])
        .group_by("aspect")
        .agg(
            pl.col("family").first(),
            pl.len().alias("reviews"),
            pl.col("rating").cast(pl.Float64).mean().alias("mean_rating"),
            (pl.col("rating") <= 3).mean().alias("low_share"),
            (pl.col("rating") <= 3).sum().alias("low_reviews"),
        )
    )
    if std == 0.0 or low_share in (0.0, 1.0):
        return per_review.head(0).with_columns(pl.lit(0.0).alias("z"), pl.lit("").alias("polarity"))
    n = pl.col("reviews").cast(pl.Float64)
    z_mean = (pl.col("mean_rating") - mean) / (std / n.sqrt())
    z_low = (pl.col("low_share") - low_share) / (low_share * (1 - low_share) / n).sqrt()
    polarity = (
        pl.when((z_mean >= config.min_z) & (z_low < config.min_z))
        .then(pl.lit(PRAISE))
        .when(
            ((z_low >= config.min_z) | (z_mean <= -config.min_z))
            & (z_mean < 0)
            & (pl.col("low_reviews") >= 2)
        )
        .then(pl.lit(COMPLAINT))
    )
    polar = per_review.with_columns(
        z_mean.alias("z"),
        polarity.alias("polarity"),
    ).filter(
        pl.col("polarity").is_not_null()
        & (pl.col("reviews") >= min(config.min_mentions, min_count(reviews.height)))
    )
    words_say = {
        a: float(np.sign(c))
        for a, c in zip(polar["aspect"], vader_compound(polar["aspect"].to_list()), strict=True)
    }
    agrees = (
        pl.col("aspect").replace_strict(words_say, default=0.0)
        * pl.when(pl.col("polarity") == PRAISE).then(1.0).otherwise(-1.0)
        >= 0
    )
    return polar.filter(agrees).sort(
        ["polarity", "reviews", "aspect"], descending=[False, True, False]
    )


def product_aspects(
    reviews: pl.DataFrame,
    lexicon: AspectLexicon | None = None,
    config: AspectConfig | None = None,
) -> pl.DataFrame:
    """Praised and complaint aspects of every reviewed product.

    Parameters
    ----------
    reviews : polars.DataFrame
        ``review_id, product_id, rating, title, body``.
    lexicon : AspectLexicon, optional
        Learned from ``reviews`` when not given (pass one learned on all the shop's reviews
        to describe a subset).
    config : AspectConfig, optional

    Returns
    -------
    polars.DataFrame
        ``product_id, review_count, praised_aspects, complaint_aspects``; the aspect columns
        are lists of ``{aspect, mentions, example}``, most mentioned first (empty lists when
        nothing qualifies).
    """
    config = config or AspectConfig()
    sentences = review_sentences(reviews)
    if lexicon is None:
        lexicon = learn_aspect_lexicon(reviews, config, sentences)
    mentions = find_mentions(sentences, lexicon.vocabulary).join(
        lexicon.polarity.select("aspect", "polarity"), on="aspect", how="inner"
    )
    listed = _listed_aspects(mentions, config)
    counts = reviews.group_by("product_id").agg(pl.len().cast(pl.Int64).alias("review_count"))
    out = counts
    for polarity, column in ((PRAISE, "praised_aspects"), (COMPLAINT, "complaint_aspects")):
        lists = (
            listed.filter(pl.col("polarity") == polarity)
            .sort(["product_id", "rank"])
            .group_by("product_id", maintain_order=True)
            .agg(pl.struct("aspect", "mentions", "example").alias(column))
        )
        out = out.join(lists, on="product_id", how="left")
        out = out.with_columns(pl.col(column).fill_null(pl.lit([], dtype=pl.List(ASPECT_STRUCT))))
    return out.sort("product_id").select(
        "product_id", "review_count", "praised_aspects", "complaint_aspects"
    )


def _listed_aspects(mentions: pl.DataFrame, config: AspectConfig) -> pl.DataFrame:
    """Per product and polarity, the top families: wording, distinct reviews, example."""
    key = ["product_id", "polarity", "family"]
    wording = (
        mentions.unique(["product_id", "polarity", "family", "aspect", "review_id"])
        .group_by([*key, "aspect"])
        .agg(pl.len().alias("_n"))
        .sort([*key, "_n", "aspect"], descending=[False, False, False, True, False])
        .unique(key, keep="first", maintain_order=True)
        .select(*key, "aspect")
    )
    agrees = (
        pl.when(pl.col("polarity") == PRAISE)
        .then(pl.col("rating") >= 4)
        .otherwise(pl.col("rating") <= 3)
    )
    families = mentions.group_by(key).agg(
        pl.col("review_id").n_unique().cast(pl.Int64).alias("mentions"),
        agrees.any().alias("_agreed"),
    )
    # A product's own reviews must back the aspect at least once (a complaint from a 1-3
    # star review): "light scent" praised in five-star reviews is no complaint there.
    families = (
        families.filter((pl.col("mentions") >= config.min_mentions) & pl.col("_agreed"))
        .drop("_agreed")
        .join(wording, on=key)
    )
    families = families.with_columns(
        pl.col("mentions")
        .rank("ordinal", descending=True)
        .over(["product_id", "polarity"])
        .alias("_r")
    )
    # Ties in mentions: alphabetical wording, so the list is deterministic.
    families = families.sort(
        ["product_id", "polarity", "mentions", "aspect"], descending=[False, False, True, False]
    )
    families = (
        families.with_columns(
            pl.int_range(1, pl.len() + 1).over(["product_id", "polarity"]).alias("rank")
        )
        .filter(pl.col("rank") <= config.max_aspects)
        .drop("_r")
    )
    return families.join(_examples(mentions, families, config), on=key, how="left")


def _examples(mentions: pl.DataFrame, families: pl.DataFrame, config: AspectConfig) -> pl.DataFrame:
    """One quotable sentence per listed family (see the module docstring for the order)."""
    low, high = config.example_chars
    length = pl.col("sentence").str.len_chars()
    agrees = (
        pl.when(pl.col("polarity") == PRAISE)
        .then(pl.col("rating") >= 4)
        .otherwise(pl.col("rating") <= 3)
    )
    candidates = mentions.join(
        families.select("product_id", "polarity", "family", pl.col("aspect").alias("_shown")),
        on=["product_id", "polarity", "family"],
        how="inner",
    ).with_columns(
        agrees.alias("_agrees"),
        (pl.col("aspect") == pl.col("_shown")).alias("_worded"),
        pl.col("norm").str.contains(pl.col("_shown"), literal=True).alias("_literal"),
        length.is_between(low, high).alias("_fits"),
        length.alias("_len"),
    )
    best = candidates.sort(
        [
            "_agrees",
            "_literal",
            "_worded",
            "_fits",
            "from_title",
            "_len",
            "review_id",
            "sentence_no",
        ],
        descending=[True, True, True, True, False, False, False, False],
    ).unique(["product_id", "polarity", "family"], keep="first", maintain_order=True)
    return best.select(
        "product_id", "polarity", "family", scrub(pl.col("sentence")).alias("example")
    )


__all__ = [
    "ASPECT_STRUCT",
    "AspectConfig",
    "AspectLexicon",
    "find_mentions",
    "learn_aspect_lexicon",
    "product_aspects",
]
