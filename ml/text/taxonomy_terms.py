"""What a product *is*, read from its name: the head noun and a compound qualifier.

A merchandiser groups products by what the thing is (holder, bag, candle, sign, mug), not
by motif or colour ("red spotty", "retrospot", "butterfly"). Catalogue names put the head
noun at either end ("JUMBO BAG RED RETROSPOT", "WHITE HANGING HEART T-LIGHT HOLDER"), so
position alone cannot find it. The rule here:

1. **Tokens** of the name, lower-cased and singularised, up to the first preposition that
   starts a complement ("candles *in* ramekins", "clock *w/* sucker").
2. **Candidates**: tokens that are not generic modifiers (:data:`NON_HEAD`: colours, sizes,
   packaging, materials, seasonal themes, connectors, generic descriptors). The lexicon is
   generic retail English, not a list of this catalogue's answers.
3. **Typeness** of each word, learnt from the catalogue itself (:func:`learn_typeness`): the
   share of names containing the word in which it is the head, smoothed towards a prior.
   It starts from "the last candidate is the head" and is re-estimated with each name's
   head chosen as its candidate of highest typeness, until no head changes. A motif word
   ("retrospot") ends names only sometimes and loses to the type word beside it, which
   ends most of its names ("bag", "holder").
4. **Qualifier**: a seasonal theme anywhere in the name ("christmas decoration"), else the
   candidate just before the head when that word is *bound* to the head (mostly used in
   front of it: "t-light holder", "lunch bag", "cushion cover", "photo frame"). Motif words
   are not bound to one head, so "retrospot bags" never forms.

Everything here is pure Python over strings; :mod:`ml.text.taxonomy` builds the groups.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass


def _lexicon(words: str) -> frozenset[str]:
    return frozenset(words.split())


COLOURS = _lexicon(
    "red pink blue green white black yellow orange purple brown grey gray cream ivory gold "
    "golden silver turquoise turq lilac multicolour multicoloured multi coloured colour "
    "colours col pastel clear natural bronze beige jade teal aqua fuschia fuchsia lime mint "
    "navy violet peach plum burgundy burg cerise scarlet amber copper chrome rainbow "
    "neon dark light-blue wht blk"
)
SIZES = _lexicon(
    "small large medium mini jumbo big giant tall tiny long short sml lge med lrg wide slim "
    "little extra xl xxl miniature minature"
)
PACKAGING = _lexicon("set pack pk of assorted asst asstd ass pair piece pc pcs cm mm inch boxed")
CONNECTORS = _lexicon(
    "and with w in on the a an for to de du la le des my your our i it its or at by from x "
    "n is be are this that"
)
DESCRIPTORS = _lexicon(
    "design style vintage retro antique ant new classic modern traditional shape shaped print "
    "printed decorative decor painted hanging scented glitter sparkly funky cute happy lovely "
    "pretty sweet romantic rustic french english scandinavian victorian edwardian baroque own "
    "single double triple round square oval embossed etched frosted polished cut fancy "
    "assortment mixed various deluxe luxury best font pattern motif image logo slogan"
)
MATERIALS = _lexicon(
    "glass metal wood wooden zinc ceramic enamel porcelain paper felt fabric cotton wicker "
    "acrylic plastic iron silk lace velvet leather wire slate bamboo raffia seagrass resin "
    "china melamine polyester brass stone crystal pearl bead beaded linen wool woolly "
    "knitted crochet tinsel chenille suede"
)
# Seasonal themes are qualifiers ("Christmas decorations"), never the head.
THEMES = {
    "christmas": "christmas",
    "xmas": "christmas",
    "easter": "easter",
    "valentine": "valentine",
    "halloween": "halloween",
    "birthday": "birthday",
    "wedding": "wedding",
}
# Materials may qualify a head ("metal sign"); the rest of the lexicon never does.
NEVER_QUALIFIER = COLOURS | SIZES | PACKAGING | CONNECTORS | DESCRIPTORS
NON_HEAD = NEVER_QUALIFIER | MATERIALS | frozenset(THEMES)
# Catalogue abbreviations of head nouns (extend per shop); applied after singularising.
ABBREVIATIONS = {
    "neckl": "necklace",
    "bfly": "butterfly",
    "dec": "decoration",
    "hldr": "holder",
    "tealight": "t-light",
    "tlight": "t-light",
    "candleholder": "candle holder",
}
# Prepositions that start a complement: what follows describes contents or features.
COMPLEMENT_STARTS = frozenset({"in", "with", "w", "for", "on"})

_WORD = re.compile(r"[a-z][a-z\-]*[a-z]|[a-z]")


def singular(word: str) -> str:
    """A plural catalogue word's singular ("candles" -> "candle", "doilies" -> "doily")."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "ous")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


# Plurals the regular rule gets wrong, and nouns a group name keeps singular.
IRREGULAR_PLURALS = {
    "shelf": "shelves",
    "leaf": "leaves",
    "knife": "knives",
    "half": "halves",
    "cactus": "cacti",
    "mouse": "mice",
    "child": "children",
    "person": "people",
}
MASS_NOUNS = frozenset(
    {"incense", "cutlery", "stationery", "jewellery", "bunting", "wrap", "tableware", "luggage"}
)


def plural(word: str) -> str:
    """The English plural of a singular word (mass nouns stay as they are)."""
    if word in MASS_NOUNS:
        return word
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def tokens(name: str | None) -> list[str]:
    """Singular lower-case word tokens of a name, cut before a complement.

    "SET/4 SCENTED CANDLES IN RAMEKINS" -> ``["set", "scented", "candle"]``. The cut only
    happens once a possible head has been seen, so "IN THE GARDEN SIGN" keeps its words.
    """
    if not name:
        return []
    words = _WORD.findall(name.lower().replace("'s", "").replace("'", ""))
    out: list[str] = []
    for word in words:
        if word in COMPLEMENT_STARTS and any(_is_candidate(w) for w in out):
            break
        # Lexicon words stay as written ("christmas" is not a plural).
        base = word if word in NON_HEAD else singular(word)
        out.extend(ABBREVIATIONS.get(base, base).split())
    return out


def _is_candidate(word: str) -> bool:
    return len(word) >= 3 and word not in NON_HEAD


def candidates(words: list[str]) -> list[int]:
    """Positions in ``words`` that may be the head noun."""
    return [i for i, word in enumerate(words) if _is_candidate(word)]


@dataclass(frozen=True)
class TypenessModel:
    """How often each word is the head of the names it occurs in (smoothed).

    Attributes
    ----------
    typeness : dict of str to float
        Word -> smoothed head rate; unseen words get ``prior``.
    prior : float
        Head rate of an unseen word.
    """

    typeness: dict[str, float]
    prior: float

    def score(self, word: str) -> float:
        return self.typeness.get(word, self.prior)


def learn_typeness(
    token_lists: list[list[str]],
    *,
    prior: float = 0.3,
    strength: float = 3.0,
    max_rounds: int = 30,
) -> TypenessModel:
    """Learn each word's typeness from a catalogue's names (see the module docstring).

    Parameters
    ----------
    token_lists : list of list of str
        :func:`tokens` of every name.
    prior, strength : float
        Smoothing: ``(heads + prior * strength) / (names + strength)``.
    max_rounds : int
        Re-estimation rounds at most (it converges in about 10 on Online Retail).

    Returns
    -------
    TypenessModel
    """
    positions = [candidates(words) for words in token_lists]
    occurrences = Counter(
        w
        for words, pos in zip(token_lists, positions, strict=True)
        for w in {words[i] for i in pos}
    )
    heads = [
        words[pos[-1]] if pos else None for words, pos in zip(token_lists, positions, strict=True)
    ]
    typeness: dict[str, float] = {}
    for _ in range(max_rounds):
        counts = Counter(h for h in heads if h is not None)
        typeness = {
            w: (counts[w] + prior * strength) / (n + strength) for w, n in occurrences.items()
        }
        model = TypenessModel(typeness, prior)
        new_heads = [
            _best(words, pos, model) for words, pos in zip(token_lists, positions, strict=True)
        ]
        if new_heads == heads:
            break
        heads = new_heads
    return TypenessModel(dict(sorted(typeness.items())), prior)


def _best(words: list[str], positions: list[int], model: TypenessModel) -> str | None:
    """The candidate of highest typeness; ties go to the rightmost."""
    if not positions:
        return None
    best = max(positions, key=lambda i: (model.score(words[i]), i))
    return words[best]


@dataclass(frozen=True)
class ProductTerms:
    """The head noun of one name and the qualifiers it could form a compound with."""

    head: str | None
    theme: str | None
    left: str | None


def product_terms(words: list[str], model: TypenessModel) -> ProductTerms:
    """Head, seasonal theme and left neighbour of the head, from :func:`tokens`."""
    positions = candidates(words)
    if not positions:
        return ProductTerms(None, _theme(words), None)
    index = max(positions, key=lambda i: (model.score(words[i]), i))
    left = None
    if index > 0:
        before = words[index - 1]
        if len(before) >= 3 and before not in NEVER_QUALIFIER and before not in THEMES:
            left = before
    return ProductTerms(words[index], _theme(words), left)


def heads_by_typeness(words: list[str], model: TypenessModel) -> list[str]:
    """Candidate head nouns of a name, most type-like first (ties: rightmost first)."""
    positions = sorted(candidates(words), key=lambda i: (model.score(words[i]), i), reverse=True)
    return list(dict.fromkeys(words[i] for i in positions))


def _theme(words: list[str]) -> str | None:
    for word in words:
        if word in THEMES:
            return THEMES[word]
    return None


def bound_qualifiers(
    terms: list[ProductTerms],
    token_lists: list[list[str]],
    model: TypenessModel,
    *,
    min_binding: float = 0.4,
) -> set[tuple[str, str]]:
    """``(qualifier, head)`` pairs that name a kind of product ("lunch bag", "candle holder").

    A qualifier is bound when it is itself a type noun (typeness >= 0.5: a *candle*
    holder, a *bag* charm) or when at least ``min_binding`` of the names containing it have
    it right before their head ("t-light", "cushion", "photo", "cake"). A motif word
    ("retrospot", "heart") mostly stands elsewhere in the name, so "retrospot bags" never
    forms.
    """
    occurrences = Counter(w for words in token_lists for w in set(words))
    before_head = Counter(t.left for t in terms if t.left is not None)
    return {
        (t.left, t.head)
        for t in terms
        if t.left is not None
        and t.head is not None
        and (before_head[t.left] / occurrences[t.left] >= min_binding or model.score(t.left) >= 0.5)
    }


def display_name(qualifier: str | None, head: str) -> str:
    """A readable group name: "Christmas decorations", "T-light holders", "Mugs"."""
    words = f"{qualifier} {plural(head)}" if qualifier else plural(head)
    return words[:1].upper() + words[1:]


def group_key(qualifier: str | None, head: str) -> str:
    """The stable key of a head-noun group (its id is derived from it)."""
    return f"{qualifier} {head}" if qualifier else head
