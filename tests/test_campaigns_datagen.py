"""The generator's ground-truth campaigns: deterministic, baseline kept, truth recorded."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ml.campaigns.assignment import is_control
from ml.datagen import generate_shop
from ml.datagen.uplift import CAMPAIGN_TRUTH_FILE

SHOP = {"customers": 600, "products": 80, "days": 45, "seed": 5}
ORDER_KEY = ["customer_id", "ordered_at", "status", "channel", "country"]


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("uplift_shops")
    generate_shop(root / "plain", **SHOP)
    generate_shop(root / "a", **SHOP, campaign_uplift=0.3)
    generate_shop(root / "b", **SHOP, campaign_uplift=0.3)
    return {"plain": root / "plain", "a": root / "a", "b": root / "b"}


def test_same_arguments_give_byte_identical_files_and_truth(shops: dict[str, Path]) -> None:
    names = sorted(p.name for p in shops["a"].iterdir())
    assert CAMPAIGN_TRUTH_FILE in names
    assert names == sorted(p.name for p in shops["b"].iterdir())
    for name in names:
        assert (shops["a"] / name).read_bytes() == (shops["b"] / name).read_bytes(), name
    assert not (shops["plain"] / CAMPAIGN_TRUTH_FILE).exists()


def test_baseline_shop_is_kept_and_only_responders_in_treatment_buy_more(
    shops: dict[str, Path],
) -> None:
    plain = pl.read_parquet(shops["plain"] / "orders.parquet").select(ORDER_KEY)
    shop = pl.read_parquet(shops["a"] / "orders.parquet").select(ORDER_KEY)
    assert plain.join(shop, on=ORDER_KEY, how="anti", nulls_equal=True).height == 0
    added = shop.join(plain, on=ORDER_KEY, how="anti", nulls_equal=True)
    truth = pl.read_parquet(shops["a"] / CAMPAIGN_TRUTH_FILE)
    uplift = truth.filter(pl.col("campaign_id") == "CMP007")
    responders = uplift.filter(pl.col("responds") & (pl.col("assignment_group") == "treatment"))
    # One campaign-driven order per responding treatment customer, inside the window.
    assert sorted(added["customer_id"]) == sorted(responders["customer_id"])
    start, end = uplift["window_start"][0], uplift["window_end"][0]
    assert added["ordered_at"].is_between(start, end, closed="left").all()
    assert (added["status"] == "placed").all()
    # The placebo never responds; the groups are the campaign step's own hash.
    assert not truth.filter(pl.col("campaign_id") == "CMP008")["responds"].any()
    control = is_control("CMP007", uplift["customer_id"].to_list(), 0.5)
    assert (uplift["assignment_group"] == "control").to_list() == control.tolist()


def test_ground_truth_campaigns_are_in_the_campaigns_entity(shops: dict[str, Path]) -> None:
    campaigns = pl.read_parquet(shops["a"] / "campaigns.parquet")
    assert campaigns["campaign_id"].to_list()[-2:] == ["CMP007", "CMP008"]
    assert campaigns.height == 8
    assert pl.read_parquet(shops["plain"] / "campaigns.parquet").height == 6


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"campaign_uplift": 1.5}, "within"), ({"campaign_uplift": 0.1, "days": 30}, "days >= 42")],
)
def test_bad_uplift_arguments_say_what_to_do(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_shop(tmp_path, **{**SHOP, **overrides})
