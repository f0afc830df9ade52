"""Aspect phrasing, variant merging and per-product lists (ml.text.aspects), on small corpora."""

from __future__ import annotations

import polars as pl
import pytest

from ml.text.aspect_lexicon import AspectVocabulary
from ml.text.aspect_phrases import phrase, templates
from ml.text.aspects import AspectConfig, learn_aspect_lexicon, product_aspects
from ml.text.sentences import normalise, review_sentences, scrub

VOCABULARY = AspectVocabulary(
    nouns=("fabric", "colour", "material", "length", "price"),
    descriptors=("soft", "thin", "sheer", "flattering", "unflattering", "watered", "boxy"),
    product_nouns=("dress",),
    singular={"fabrics": "fabric"},
)


def phrases_in(sentence: str) -> set[str]:
    """Every aspect the templates find in one sentence."""
    norm = pl.select(normalise(pl.lit(sentence))).item()
    found = set()
    for template in templates(VOCABULARY):
        for match in template.pattern.finditer(norm):
            result = phrase(template, match.group(0), VOCABULARY)
            if result is not None:
                found.add(result.aspect)
    return found


@pytest.mark.parametrize(
    ("sentence", "aspect"),
    [
        ("It runs a bit small, size up.", "runs small"),
        ("This dress fits very big!", "runs large"),
        ("I found it to run true-to-size.", "true to size"),
        ("TTS for me.", "true to size"),
        ("It doesn't run true to size.", "not true to size"),
        ("Way too much fabric, tent-like.", "too much fabric"),
        ("Hits me too short.", "too short"),
        ("The colors are exactly as pictured.", "colour as pictured"),
        ("The colour is not as pictured.", "colour not as pictured"),
        ("Looks nothing like the picture.", "not as pictured"),
        ("Item was as described.", "as described"),
        ("The mug arrived cracked.", "arrived broken"),
        ("It came quickly and well packed.", "arrived quickly"),
        ("It stopped working after a week.", "stopped working"),
        ("Shrank after one wash.", "shrank in the wash"),
        ("Cheap poly, thin fabric, clingy.", "thin fabric"),
        ("The fabric is so thin.", "thin fabric"),
        ("So soft!", "soft"),
        ("So watered down.", "watered down"),
        ("The fabric is not soft at all.", "fabric not soft"),
        ("Great price for the quality.", "great price"),
    ],
)
def test_marketer_phrases(sentence, aspect):
    assert aspect in phrases_in(sentence)


@pytest.mark.parametrize(
    "sentence",
    ["I love this dress.", "The fabric.", "The back is great.", "It looked nice.", "I am short."],
)
def test_non_aspects_are_not_phrased(sentence):
    assert phrases_in(sentence) == set()


def test_variants_share_a_family():
    templates_by_name = {t.name: t for t in templates(VOCABULARY)}
    descriptor = templates_by_name["descriptor"]
    described = templates_by_name["described"]
    too = templates_by_name["too"]
    fit = templates_by_name["fit"]
    assert phrase(descriptor, "unflattering", VOCABULARY).family == "not flattering"
    assert phrase(descriptor, "not flattering", VOCABULARY).family == "not flattering"
    assert phrase(described, "soft fabric", VOCABULARY).family == "soft"
    assert phrase(described, "fabric is soft", VOCABULARY).family == "soft"
    assert phrase(too, "too big", VOCABULARY).family == phrase(fit, "runs large", VOCABULARY).family
    # Verdicts on the same attribute group by the attribute.
    assert phrase(described, "great price", VOCABULARY).family == "price"


def test_spelling_variants_are_merged_and_contacts_masked():
    norm = pl.select(normalise(pl.lit("Love the COLORS, the Colour and the grey color!"))).item()
    assert norm == "love the colour the colour and the grey colour"
    quoted = pl.select(
        scrub(pl.lit("Mail me at jo.doe@example.com or call +44 20 7946 0958, see www.x.io/a"))
    ).item()
    assert "example.com" not in quoted and "7946" not in quoted and "www" not in quoted
    assert "[email]" in quoted and "[number]" in quoted and "[link]" in quoted


def shop_reviews() -> pl.DataFrame:
    """A small shop: dress D1 runs short and its fabric is thin; top T1 is soft, true to size."""
    rows = []

    def add(product, rating, title, body):
        rows.append((f"R{len(rows):04d}", product, rating, title, body))

    for i in range(12):
        add("D1", 2, "Too short", f"Way too short on me, I am 5'{i % 4 + 5}. The fabric is thin.")
        add("D1", 5, "Lovely", "The colour is lovely and it is so soft.")
        add("T1", 5, "So soft", "So soft and true to size. The fabric is so soft.")
        add("T1", 5, "Love it", "Fits true to size, very soft. Contact me at a.b@example.com")
        add("X9", 4, "Nice", "Nice enough, the fabric is fine and very soft.")
        add("X9", 3, "Okay", "The fabric is okay, it runs large and feels a bit thin.")
    for i in range(30):
        add(f"F{i}", 4 + i % 2, "Good", "Good value, the fabric is nice and very soft.")
        add(f"G{i}", 4, "Fine", "The fabric is soft but a little thin, so very thin.")
    return pl.DataFrame(
        rows, schema=["review_id", "product_id", "rating", "title", "body"], orient="row"
    )


def test_product_lists_name_praise_and_complaints_with_counts_and_examples():
    reviews = shop_reviews()
    aspects = product_aspects(reviews, config=AspectConfig(min_z=1.5))
    by_product = {row["product_id"]: row for row in aspects.iter_rows(named=True)}

    dress = by_product["D1"]
    complaints = {a["aspect"]: a for a in dress["complaint_aspects"]}
    assert "too short" in complaints
    assert complaints["too short"]["mentions"] == 12
    assert "too short" in complaints["too short"]["example"].lower()
    top = by_product["T1"]
    praised = [a["aspect"] for a in top["praised_aspects"]]
    assert "true to size" in praised and "soft" in praised
    # Every example comes from a review of the product and is scrubbed.
    for row in aspects.iter_rows(named=True):
        for item in row["praised_aspects"] + row["complaint_aspects"]:
            assert "@" not in item["example"]
    assert dress["review_count"] == 24
    assert aspects["product_id"].n_unique() == aspects.height


def test_lists_are_deterministic_and_limited():
    reviews = shop_reviews()
    config = AspectConfig(min_z=1.5, max_aspects=1)
    first = product_aspects(reviews, config=config)
    again = product_aspects(reviews.sample(fraction=1.0, shuffle=True, seed=3), config=config)
    assert first.equals(again)
    assert first["praised_aspects"].list.len().max() <= 1


def test_lexicon_learns_attribute_nouns_and_descriptors_from_the_text():
    lexicon = learn_aspect_lexicon(shop_reviews(), AspectConfig(min_z=1.5))
    assert "fabric" in lexicon.vocabulary.nouns
    assert "soft" in lexicon.vocabulary.descriptors
    assert "dress" not in lexicon.vocabulary.nouns
    polarity = dict(zip(lexicon.polarity["aspect"], lexicon.polarity["polarity"], strict=True))
    assert polarity.get("too short") == "complaint"


def test_sentences_keep_title_and_body_apart():
    reviews = pl.DataFrame(
        {
            "review_id": ["R1"],
            "product_id": ["P1"],
            "rating": [5],
            "title": ["Runs small"],
            "body": ["Love it. Order a size up!\nSo soft"],
        }
    )
    sentences = review_sentences(reviews)
    assert sentences["sentence"].to_list() == [
        "Runs small",
        "Love it.",
        "Order a size up!",
        "So soft",
    ]
    assert sentences["from_title"].to_list() == [True, False, False, False]
