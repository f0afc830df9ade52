"""Aspect phrases in review sentences, in the words a marketer would use.

Each template finds one kind of phrase in a normalised sentence and turns every match into
a canonical aspect (None: not an aspect):

=============  =====================================  ===================================
template       finds                                   aspect
=============  =====================================  ===================================
fit            runs / fits (a bit) small, large, ...   runs small, runs large, runs long
size           true to size, tts                       true to size
too            too short, too much fabric              too short, too much fabric
delivery       arrived broken, came quickly            arrived broken, arrived quickly
wear           stopped working, shrank, came apart     stopped working, shrank in the wash
pictured       colour is as pictured, as described     colour as pictured, as described
described      thin fabric, the fabric is thin         thin fabric
descriptor     soft, sheer, watery                     soft, sheer, watery
=============  =====================================  ===================================

A negation up to two words before the phrase (``doesn't run small``, ``not as pictured``,
``nothing like the picture``) yields the negated aspect (``not true to size``).
``family`` groups the variants one product list should show once: every phrase built on
the same descriptor (``soft``, ``soft fabric``, ``fabric is soft``), every verdict on the
same attribute (``great price``, ``good price``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ml.text.aspect_lexicon import COPULA, GENERIC, INTENSIFIER, AspectVocabulary

NEGATION = (
    r"(?:not|never|no|nothing|hardly|isn't|wasn't|aren't|weren't|doesn't|don't|didn't|won't|"
    r"can't|couldn't|isnt|wasnt|arent|werent|doesnt|dont|didnt|wont|cant|couldnt)"
)
NEGATED = rf"(?P<neg>\b{NEGATION} (?:[a-z']+ ){{0,2}})?"
SIZE_WORDS = frozenset(
    [
        "small",
        "large",
        "big",
        "huge",
        "tiny",
        "tight",
        "snug",
        "loose",
        "long",
        "short",
        "narrow",
        "wide",
        "generous",
        "low",
        "high",
    ]
)
FIT_SIZES = {"small": "small", "tiny": "small", "large": "large", "big": "large",
             "huge": "large", "generous": "large"}  # fmt: skip
DELIVERY_STATES = {
    **dict.fromkeys(("broken", "cracked", "shattered", "smashed", "crushed"), "broken"),
    **dict.fromkeys(("damaged", "dented", "torn", "ripped", "scratched"), "damaged"),
    **dict.fromkeys(("leaking", "leaked", "spilled", "leaky"), "leaking"),
    **dict.fromkeys(("opened", "open", "unsealed", "used"), "opened"),
    **dict.fromkeys(("quickly", "quick", "fast", "early", "promptly", "soon"), "quickly"),
    **dict.fromkeys(("late", "delayed"), "late"),
    **{state: state for state in ("dirty", "stained", "wet", "melted", "expired", "missing")},
    "on time": "on time",
}
# How things wear out, as reviewers say it -> as a list shows it.
WEAR = {
    **dict.fromkeys(("stopped working", "quit working", "stopped charging"), "stopped working"),
    **dict.fromkeys(("fell apart", "came apart", "falling apart", "coming apart"), "fell apart"),
    **dict.fromkeys(("shrank", "shrunk", "shrinks"), "shrank in the wash"),
    **dict.fromkeys(("pilled", "pilling", "pills"), "pills"),
    **dict.fromkeys(("faded", "fades"), "faded"),
    **dict.fromkeys(("ripped", "tore", "unravelled", "unraveled"), "ripped"),
}
EVALUATIVE = frozenset(
    [
        "great",
        "good",
        "nice",
        "perfect",
        "beautiful",
        "gorgeous",
        "lovely",
        "amazing",
        "excellent",
        "fantastic",
        "wonderful",
        "reasonable",
        "fair",
        "bad",
        "poor",
        "terrible",
        "horrible",
        "awful",
        "cheap",
        "low",
        "high",
        "decent",
    ]
)


@dataclass(frozen=True)
class Template:
    """A phrase template: its regex (named groups) and how to phrase a match."""

    name: str
    pattern: re.Pattern[str]


def templates(vocabulary: AspectVocabulary) -> list[Template]:
    """The templates of a shop, the ``described``/``descriptor`` ones built on its vocabulary."""
    nouns = _alternation(list(vocabulary.nouns) + list(vocabulary.singular))
    descriptors = _alternation(vocabulary.descriptors)
    qualifiers = _alternation(set(vocabulary.descriptors) | EVALUATIVE)
    singles = _alternation(
        w for w in vocabulary.descriptors if w not in SIZE_WORDS and w not in EVALUATIVE
    )
    sizes = "|".join(sorted(SIZE_WORDS | {"true to size", "tts"}, key=len, reverse=True))
    fit_verbs = r"(?:runs?|ran|running|fits?|fitting)"
    specs = {
        "fit": rf"{NEGATED}\b{fit_verbs} (?:{INTENSIFIER} )?(?P<size>{sizes})\b",
        "size": rf"{NEGATED}\b(?P<tts>true to size|tts)\b",
        "too": rf"{NEGATED}\btoo (?P<much>much )?(?P<word>[a-z]+)\b",
        "delivery": (
            r"\b(?:arrived|came|was delivered|were delivered|showed up|got here) "
            rf"(?:{INTENSIFIER} )?(?P<state>on time|[a-z]+)\b"
        ),
        "pictured": (
            rf"{NEGATED}\b(?:(?P<noun>[a-z]+) (?:is |was |are |were |looks? |looked )?)?"
            r"(?P<neg2>not |nothing )?(?:exactly |just )?(?:as|like) (?:the |in the |on the )?"
            r"(?P<ref>pictured|shown|described|advertised|pictures?|photos?|images?)\b"
        ),
        "wear": rf"\b(?P<wear>{'|'.join(sorted(WEAR, key=len, reverse=True))})\b",
    }
    if nouns and qualifiers:
        specs["described"] = (
            rf"{NEGATED}\b(?P<desc>{qualifiers}) (?P<noun>{nouns})\b"
            rf"|\b(?P<noun2>{nouns}) {COPULA} (?P<neg2>not )?(?:{INTENSIFIER} )?"
            rf"(?P<desc2>{descriptors or qualifiers})\b"
        )
    if singles:
        specs["descriptor"] = rf"{NEGATED}\b(?P<desc>{singles})(?: (?P<particle>down|out))?\b"
    return [Template(name, re.compile(pattern)) for name, pattern in specs.items()]


def _alternation(words) -> str:
    """Regex alternation of words, longest first (so ``sheer`` wins over ``she``)."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


@dataclass(frozen=True)
class Phrase:
    """A canonical aspect and the family it is shown under."""

    aspect: str
    family: str


def _family(descriptor: str, vocabulary: AspectVocabulary, negated: bool = False) -> str:
    """The family of a descriptor, a crude stem: "watery" and "watered down" are one.

    "unflattering" is "not flattering" said in one word. The family is a grouping key
    only: lists show the product's most used wording.
    """
    word = descriptor.split(" ")[0]
    if word.startswith("un") and word[2:] in vocabulary.descriptors:
        word, negated = word[2:], not negated
    for suffix, min_length in (("ed", 6), ("y", 5)):
        if word.endswith(suffix) and len(word) >= min_length:
            word = word[: -len(suffix)]
            break
    return f"not {word}" if negated else word


def phrase(template: Template, match: str, vocabulary: AspectVocabulary) -> Phrase | None:
    """Phrase one match of ``template`` as a marketer would, or None if it is no aspect."""
    found = template.pattern.fullmatch(match)
    if found is None:
        return None
    groups = {k: v for k, v in found.groupdict().items() if v}
    negated = "neg" in groups or "neg2" in groups
    prefix = "not " if negated else ""
    singular = vocabulary.singular
    if template.name == "fit":
        size = groups["size"]
        if size in ("true to size", "tts"):
            return Phrase(f"{prefix}true to size", f"{prefix}true to size")
        aspect = f"{prefix}runs {FIT_SIZES.get(size, size)}"
        return Phrase(aspect, aspect)
    if template.name == "size":
        return Phrase(f"{prefix}true to size", f"{prefix}true to size")
    if template.name == "too":
        word = singular.get(groups["word"], groups["word"])
        if "much" in groups:
            return (
                Phrase(f"too much {word}", f"too much {word}") if word in vocabulary.nouns else None
            )
        if negated or word not in set(vocabulary.descriptors) | SIZE_WORDS or word in GENERIC:
            return None
        # "too big" is how "runs large" is said of one garment: one family.
        size = FIT_SIZES.get(word)
        return Phrase(f"too {word}", f"runs {size}" if size else _family(word, vocabulary))
    if template.name == "delivery":
        state = DELIVERY_STATES.get(groups["state"])
        return Phrase(f"arrived {state}", f"arrived {state}") if state else None
    if template.name == "wear":
        return Phrase(WEAR[groups["wear"]], WEAR[groups["wear"]])
    if template.name == "pictured":
        ref = "as described" if groups["ref"] in ("described", "advertised") else "as pictured"
        noun = singular.get(groups.get("noun", ""), groups.get("noun", ""))
        subject = f"{noun} " if noun in vocabulary.nouns else ""
        aspect = f"{subject}{'not ' if negated else ''}{ref}"
        return Phrase(aspect, aspect)
    if template.name == "described":
        desc = groups.get("desc") or groups["desc2"]
        noun = singular.get(
            groups.get("noun") or groups["noun2"], groups.get("noun") or groups["noun2"]
        )
        aspect = f"{noun} not {desc}" if negated else f"{desc} {noun}"
        # Verdicts group by attribute ("great price", "good price"); descriptions by word.
        if desc in EVALUATIVE:
            return Phrase(aspect, f"{prefix}{noun}")
        return Phrase(aspect, _family(desc, vocabulary, negated))
    if template.name == "descriptor":
        desc = groups["desc"]
        if "particle" in groups and desc.endswith("ed"):  # watered down, washed out
            desc = f"{desc} {groups['particle']}"
        return Phrase(f"{prefix}{desc}", _family(desc, vocabulary, negated))
    raise ValueError(f"unknown template {template.name!r}")
