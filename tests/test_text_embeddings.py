"""Product embeddings (ml.text.embeddings): the bundled wordllama model, the incremental store."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ml.text.embeddings import (
    EMBEDDING_DIM,
    MODEL_VERSION,
    default_encoder,
    embed_products,
    empty_store,
    lookup_embeddings,
    product_text,
    text_key,
    update_embeddings,
)


class CountingEncoder:
    """The real wordllama encoder, counting the texts it is asked to embed."""

    def __init__(self, version: str = MODEL_VERSION) -> None:
        self.inner = default_encoder()
        self.version = version
        self.dim = self.inner.dim
        self.seen: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.embed(texts)


NAMES = [
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "RED HANGING HEART T-LIGHT HOLDER",
    "JUMBO BAG RED RETROSPOT",
    "LUNCH BAG RED RETROSPOT",
    "PACK OF 72 RETROSPOT CAKE CASES",
]


def test_bundled_model_embeds_without_download_and_neighbours_make_sense():
    vectors = default_encoder().embed([n.lower() for n in NAMES])
    assert vectors.shape == (5, EMBEDDING_DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1)
    # Each holder's nearest is the other holder; each bag's the other bag.
    assert similarity[0].argmax() == 1 and similarity[2].argmax() == 3
    assert similarity[0, 1] > 0.8


def test_texts_are_lower_cased_so_capitals_do_not_fragment_words():
    encoder = default_encoder()
    upper, lower = encoder.embed(["T-LIGHT HOLDER"]), encoder.embed(["t-light holder"])
    np.testing.assert_array_equal(upper, lower)


def test_empty_text_gets_a_zero_vector():
    vectors = default_encoder().embed(["", "mug"])
    assert not vectors[0].any() and vectors[1].any()


def test_product_text_joins_fields_and_skips_a_description_repeating_the_name():
    products = pl.DataFrame(
        {
            "name": ["HEART MUG", "Candle", None],
            "description": ["heart mug", "Vanilla  scented", None],
            "brand": [None, "Glow", None],
            "category": ["Mugs", None, None],
        }
    )
    assert product_text(products).to_list() == [
        "heart mug mugs",
        "candle vanilla scented glow",
        "",
    ]


def test_update_embeds_only_new_or_changed_texts():
    encoder = CountingEncoder()
    texts = [n.lower() for n in NAMES]
    store, first = update_embeddings(texts + [texts[0]], None, encoder)
    assert first.embedded == 5 and first.reused == 0 and store.height == 5
    assert sorted(encoder.seen) == sorted(texts)  # the duplicate embedded once

    encoder.seen.clear()
    night = [texts[0], texts[1] + " large", texts[2], texts[3], texts[4], "new candle"]
    store2, second = update_embeddings(night, store, encoder)
    assert sorted(encoder.seen) == sorted([texts[1] + " large", "new candle"])
    assert (second.embedded, second.reused, second.dropped) == (2, 4, 1)
    assert store2.height == 6
    # Unchanged texts keep exactly their stored vectors.
    np.testing.assert_array_equal(
        lookup_embeddings([texts[0]], store2), lookup_embeddings([texts[0]], store)
    )


def test_store_is_keyed_by_text_and_model_version():
    texts = ["heart mug", "lunch bag"]
    store, _ = update_embeddings(texts, None, CountingEncoder())
    assert set(store["text_sha256"]) == {text_key(t) for t in texts}
    assert text_key("heart mug", "other-model") != text_key("heart mug")
    other = CountingEncoder(version="other-model")
    migrated, update = update_embeddings(texts, store, other)
    assert update.embedded == 2 and sorted(other.seen) == sorted(texts)
    assert set(migrated["model_version"]) == {"other-model"}


def test_lookup_of_a_text_not_in_the_store_says_what_to_do():
    store, _ = update_embeddings(["heart mug"], empty_store(), CountingEncoder())
    with pytest.raises(KeyError, match="update_embeddings"):
        lookup_embeddings(["lunch bag"], store)


def test_embed_products_is_deterministic_and_row_aligned():
    products = pl.DataFrame({"product_id": ["a", "b", "c"], "name": NAMES[:3]})
    first, store, _ = embed_products(products)
    again, _, update = embed_products(products.reverse(), store)
    assert update.embedded == 0
    np.testing.assert_array_equal(first, again[::-1])
