"""Inferred categories (ml.text.taxonomy) on the real Online Retail file and small catalogues."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from product_text_data import retail  # noqa: F401  (session fixture)

from ml.text.embeddings import embed_products
from ml.text.keyword_check import keyword_purity
from ml.text.taxonomy import (
    GIVEN,
    INFERRED,
    Method,
    TaxonomyConfig,
    TaxonomyState,
    infer_categories,
)
from ml.text.taxonomy_terms import learn_typeness, product_terms, tokens


@pytest.fixture(scope="module")
def built(retail):  # noqa: F811
    return infer_categories(retail.products, retail.vectors, retail.factors.factors)


def test_every_product_gets_a_named_inferred_category_within_the_size_limit(retail, built):  # noqa: F811
    result, state = built
    assert result.height == retail.products.height
    assert result["product_id"].to_list() == retail.products["product_id"].to_list()
    assert result["category"].null_count() == 0
    assert set(result["category_source"]) == {INFERRED}  # the file has no categories
    names = set(result["category"])
    assert all(name and name.lower() != "uncategorized" for name in names)
    # One id per name and one name per id.
    pairs = result.select("category_id", "category").unique()
    assert pairs["category_id"].n_unique() == pairs.height == len(names)
    active = int(retail.products["is_active"].sum())
    largest = result.group_by("category_id").len()["len"].max()
    assert largest <= 0.10 * active
    assert (
        50 <= len(names) <= 400
    )  # a merchandiser-sized taxonomy, not 25 blobs or 4,000 singletons
    assert state.categories.height == len(names)


def test_keyword_check_purity_beats_the_target(retail, built):  # noqa: F811
    result, _ = built
    purity = keyword_purity(retail.products["name"].to_list(), result["category"].to_numpy())
    assert purity.height == 10
    assert purity["purity"].mean() >= 0.80
    main = dict(zip(purity["keyword_group"], purity["main_group"], strict=True))
    assert main["mugs"] == "Mugs" and main["cushions"] == "Cushion covers"


def test_groups_are_what_things_are_not_motifs_or_colours(built):
    result, _ = built
    names = {name.lower() for name in result["category"]}
    assert {"candles", "mugs", "t-light holders", "metal signs", "christmas decorations"} <= names
    for motif in ("retrospot", "red retrospot", "polkadot", "red spotty", "pinks", "reds"):
        assert motif not in names and motif + "s" not in names


def test_same_inputs_give_the_same_categories(retail, built):  # noqa: F811
    result, state = built
    again, state_again = infer_categories(retail.products, retail.vectors, retail.factors.factors)
    assert again.equals(result)
    assert state_again.categories.drop("text_centroid", "factor_centroid").equals(
        state.categories.drop("text_centroid", "factor_centroid")
    )


@pytest.mark.parametrize("days", [1, 7])
def test_a_day_of_new_products_changes_no_existing_category(retail, days):  # noqa: F811
    products, vectors, factors = retail.products, retail.vectors, retail.factors.factors
    last_day = products["first_seen_at"].max().date()
    # The products first sold in the last day (or week) arrive in one night's run.
    first = last_day.toordinal() - days + 1
    earlier = np.array([d.toordinal() < first for d in products["first_seen_at"].dt.date()])
    assert 0 < (~earlier).sum() < 200
    before, state = infer_categories(
        products.filter(pl.Series(earlier)), vectors[earlier], factors[earlier]
    )
    after, next_state = infer_categories(products, vectors, factors, previous=state)
    kept = before.join(after, on="product_id", suffix="_after")
    assert kept.height == before.height
    assert (kept["category_id"] == kept["category_id_after"]).all()
    assert set(kept["category_method_after"]) == {Method.KEPT}
    fresh = after.filter(pl.Series(~earlier))
    assert fresh["category"].null_count() == 0
    assert set(fresh["category_id"]) <= set(state.categories["category_id"])
    # And the next night, nothing changed: everything is kept.
    third, _ = infer_categories(products, vectors, factors, previous=next_state)
    assert (third["category_id"] == after["category_id"]).all()


def test_a_product_whose_text_changes_is_placed_again():
    names = [
        f"{colour} {motif} lunch bag"
        for colour in ("red", "pink", "blue", "green")
        for motif in ("retrospot", "spaceboy", "dolly girl")
    ]
    names += [
        f"{colour} {motif} coffee mug"
        for colour in ("red", "pink", "blue", "green")
        for motif in ("retrospot", "spaceboy", "dolly girl")
    ]
    products = pl.DataFrame({"product_id": [f"P{i:02d}" for i in range(len(names))], "name": names})
    vectors, _, _ = embed_products(products)
    small = TaxonomyConfig(min_group_size=5, max_group_share=0.6)  # 24 products, 2 kinds
    result, state = infer_categories(products, vectors, config=small)
    assert set(result["category"]) == {"Lunch bags", "Coffee mugs"}
    renamed = products.with_columns(
        pl.when(pl.col("product_id") == "P00")
        .then(pl.lit("red retrospot coffee mug"))
        .otherwise(pl.col("name"))
        .alias("name")
    )
    new_vectors, _, _ = embed_products(renamed)
    after, _ = infer_categories(renamed, new_vectors, previous=state)
    row = after.filter(pl.col("product_id") == "P00").row(0, named=True)
    assert row["category"] == "Coffee mugs" and row["category_method"] != Method.KEPT
    assert (after["category_method"] == Method.KEPT).sum() == len(names) - 1


def test_groups_over_a_tighter_cap_are_split_into_named_parts(retail):  # noqa: F811
    config = TaxonomyConfig(max_group_share=0.02)  # Candles, Boxes, ... exceed 2 %
    result, _ = infer_categories(retail.products, retail.vectors, config=config)
    cap = int(0.02 * retail.products["is_active"].sum())
    sizes = result.group_by("category_id", "category").len()
    assert sizes["len"].max() <= cap
    assert sizes["category"].n_unique() == sizes.height  # every part has its own name
    split = result.filter(pl.col("category_method") == "size split")
    assert split.height > 0
    assert all(
        name.startswith(("Candles (", "Boxes (", "Bags (", "Necklaces (", "Decorations ("))
        for name in split["category"].unique()
    )


def test_given_categories_are_kept_and_used_for_the_rest():
    products = pl.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(8)],
            "name": [
                "white ceramic coffee mug",
                "spotty tea mug",
                "vanilla scented candle",
                "rose pillar candle",
                "large jumbo shopping bag",
                "blue polkadot mug",  # no category: should join Mugs
                "lavender candle in tin",  # no category: should join Candles
                "red retrospot jumbo bag",  # no category
            ],
            "category": ["Mugs", "Mugs", "Candles", "Candles", "Bags", None, "", "Uncategorized"],
        }
    )
    vectors, _, _ = embed_products(products)
    result, _ = infer_categories(products, vectors)
    got = dict(zip(result["product_id"], result["category"], strict=True))
    source = dict(zip(result["product_id"], result["category_source"], strict=True))
    assert [source[f"P{i}"] for i in range(5)] == [GIVEN] * 5
    assert [source[f"P{i}"] for i in range(5, 8)] == [INFERRED] * 3
    assert (got["P5"], got["P6"], got["P7"]) == ("Mugs", "Candles", "Bags")
    assert result.filter(pl.col("category") == "Mugs")["category_id"].n_unique() == 1


def test_state_survives_a_round_trip_through_parquet(retail, built, tmp_path):  # noqa: F811
    result, state = built
    for name, frame in state.to_frames().items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    names = ("categories", "assignments", "typeness", "meta")
    restored = TaxonomyState.from_frames(
        {n: pl.read_parquet(tmp_path / f"{n}.parquet") for n in names}
    )
    assert restored.config == state.config and restored.prior == state.prior
    again, _ = infer_categories(
        retail.products, retail.vectors, retail.factors.factors, previous=restored
    )
    assert (again["category_id"] == result["category_id"]).all()


def test_state_of_another_embedding_model_needs_a_rebuild():
    products = pl.DataFrame({"product_id": ["a", "b"], "name": ["mug", "candle"]})
    vectors, _, _ = embed_products(products)
    _, state = infer_categories(products, vectors)
    with pytest.raises(ValueError, match="rebuild"):
        infer_categories(products, vectors, previous=state, model_version="another-model")


def test_head_noun_is_the_type_word_not_the_motif(retail):  # noqa: F811
    words = [tokens(n) for n in retail.products["name"].to_list()]
    model = learn_typeness(words)
    expected = {
        "JUMBO BAG RED RETROSPOT": "bag",
        "LUNCH BAG RED RETROSPOT": "bag",
        "PACK OF 72 RETROSPOT CAKE CASES": "case",
        "RED RETROSPOT MUG": "mug",
        "SET/4 SCENTED CANDLES IN RAMEKINS": "candle",
        "WHITE HANGING HEART T-LIGHT HOLDER": "holder",
        "DOORMAT MERRY CHRISTMAS RED": "doormat",
        "CHRISTMAS TREE DECORATION WITH BELL": "decoration",
    }
    for name, head in expected.items():
        assert product_terms(tokens(name), model).head == head, name
    for motif in ("retrospot", "polkadot", "paisley"):
        assert model.score(motif) < model.score("bag") < model.score("holder")


def test_products_missing_a_category_in_a_categorised_catalogue_get_a_given_one():
    from ml.datagen.catalog import build_catalog, products_frame
    from ml.datagen.common import IdTables, Period

    catalog = build_catalog(1500, Period.ending("2026-10-31", 90), np.random.default_rng(3))
    products = products_frame(catalog, IdTables.numbered(1, 1500))
    blank = np.random.default_rng(4).random(products.height) < 0.3
    truth = products["category"].filter(pl.Series(blank))
    masked = products.with_columns(
        pl.when(pl.Series(blank)).then(None).otherwise(pl.col("category")).alias("category")
    )
    vectors, _, _ = embed_products(masked)
    result, state = infer_categories(masked, vectors)
    assert set(result["category"]) == set(products["category"])  # no invented categories
    assert set(state.categories["source"]) == {GIVEN}
    recovered = result["category"].filter(pl.Series(blank))
    assert (recovered == truth).mean() >= 0.9
    assert (result["category_source"].filter(pl.Series(blank)) == INFERRED).all()
