"""Featured products kept columnar: the same lists as dicts made row by row."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from ml.campaigns.definitions import Campaign
from ml.campaigns.featured import featured_products


def campaign(category: str | None) -> Campaign:
    return Campaign(
        campaign_id="c1",
        name="Test",
        channel="email",
        target_type="category" if category else "segment",
        target_value=category or "Champions",
        starts_at=datetime(2026, 6, 1),
        ends_at=datetime(2026, 6, 30),
        max_audience=100,
        control_share=0.5,
    )


RECOMMENDATIONS = pl.DataFrame(
    {
        "customer_id": ["c3", "c1", "c1", "c1", "c3", "c2", "c1", "c9"],
        "rank": [2, 3, 1, 2, 1, 1, 4, 1],
        "product_id": ["p1", "p3", "p1", "p2", "p4", "p2", "p4", "p1"],
        "product_name": ["Mug", "Lamp", "Mug", "Vase", "Rug", "Vase", "Rug", "Mug"],
        "category": ["Home", "Light", "Home", "home", "Floor", "home", "Floor", "Home"],
        "price": [5.0, 30.0, 5.0, 12.5, 80.0, 12.5, 80.0, 5.0],
        "reason": ["bought together", None, "you viewed it", "loved", "new", "loved", "x", "y"],
    }
)
BESTSELLERS = pl.DataFrame(
    {
        "product_id": ["p9", "p8", "p7"],
        "product_name": ["Pan", "Pot", "Cup"],
        "category": ["Kitchen", "HOME", "home"],
        "price": [20.0, 15.0, 3.0],
    }
)


def reference(campaign, customer_ids, recommendations, bestsellers, n):
    """The rule written as plain Python over rows (what the mapping replaced)."""
    recs = recommendations.sort("customer_id", "rank").iter_rows(named=True)
    best = list(bestsellers.iter_rows(named=True))
    if campaign.category is not None:
        wanted = campaign.category.lower()
        recs = [r for r in recs if (r["category"] or "").lower() == wanted]
        best = [r for r in best if (r["category"] or "").lower() == wanted]
    featured: dict[str, list[dict]] = {}
    for r in recs:
        rows = featured.setdefault(r["customer_id"], [])
        if len(rows) < n:
            rows.append({k: r[k] for k in ("product_id", "reason", "category", "price")})
            rows[-1]["name"] = r["product_name"]
    reason = f"popular in {campaign.category}" if campaign.category else "popular right now"
    fallback = []
    for r in best[:n]:
        product = {k: r[k] for k in ("product_id", "category", "price")}
        fallback.append({**product, "name": r["product_name"], "reason": reason})
    return {c: featured.get(c) or fallback for c in customer_ids}


@pytest.mark.parametrize("category", [None, "HOME", "Garden"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_featured_products_equal_the_row_by_row_rule(category, n):
    members = ["c2", "c1", "c4", "c3"]  # audience order, c4 has no recommendation
    chosen = campaign(category)
    featured = featured_products(chosen, members, RECOMMENDATIONS, BESTSELLERS, n)
    expected = reference(chosen, members, RECOMMENDATIONS, BESTSELLERS, n)
    assert list(featured) == members and len(featured) == len(members)
    assert dict(featured.items()) == expected
    assert "c9" not in featured  # recommended, but not in the audience
    with pytest.raises(KeyError):
        featured["c9"]
    lists = featured.product_lists()
    assert lists["product_ids"].to_list() == [
        [p["product_id"] for p in expected[c]] for c in members
    ]
    assert lists["product_names"].to_list() == [[p["name"] for p in expected[c]] for c in members]
