"""The glue between audiences and copy: arms, phrasing seeds, aspects, table migration."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import polars as pl

from ml.campaigns.copy import CopyConfig, Guardrails
from ml.campaigns.definitions import Campaign
from ml.campaigns.messaging import (
    CopyContext,
    campaign_copy,
    ensure_audience_columns,
    praised_aspects,
    variant_of,
    writer_arms,
)

IDS = [f"C{i:07d}" for i in range(4_000)]


def test_arms_split_half_and_half_by_a_stable_hash() -> None:
    arms = writer_arms("CMP003", IDS, ("builtin", "llm"), 0, "salt")
    assert arms == writer_arms("CMP003", IDS, ("builtin", "llm"), 0, "salt")
    share = np.mean([a == "llm" for a in arms])
    assert 0.47 < share < 0.53
    assert arms != writer_arms("CMP004", IDS, ("builtin", "llm"), 0, "salt")
    assert set(writer_arms("CMP003", IDS[:5], ("template",), 0, "salt")) == {"template"}
    assert variant_of("CMP003", "C1", 0, "s") == variant_of("CMP003", "C1", 0, "s")
    assert variant_of("CMP003", "C1", 0, "s") != variant_of("CMP003", "C1", 1, "s")


def test_praised_aspects_come_from_the_review_mart_unless_reviews_turn_negative() -> None:
    con = duckdb.connect()
    assert praised_aspects(con) == {}
    con.execute("CREATE SCHEMA marts")
    aspect = "struct(aspect varchar, mentions bigint, example varchar)"
    con.execute(
        f"CREATE TABLE marts.product_review_insights (product_id VARCHAR, "
        f"praised_aspects {aspect}[], is_turning_negative BOOLEAN)"
    )
    con.execute(
        "INSERT INTO marts.product_review_insights VALUES "
        "('P1', [{'aspect': 'soft', 'mentions': 9, 'example': 'So soft.'}, "
        "{'aspect': 'true to size', 'mentions': 4, 'example': 'Fits true to size.'}], false), "
        "('P2', [], false), "
        "('P3', [{'aspect': 'soft', 'mentions': 3, 'example': 'Soft.'}], true)"
    )
    # Most mentioned first; no product without praise; none whose reviews turn negative.
    assert praised_aspects(con) == {"P1": ["soft", "true to size"]}


def test_an_audience_table_written_before_copy_keeps_its_rows() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ml")
    con.execute(
        "CREATE TABLE ml.campaign_audiences (logical_date DATE, campaign_id VARCHAR, "
        "message VARCHAR)"
    )
    con.execute("INSERT INTO ml.campaign_audiences VALUES ('2026-01-01', 'CMP001', 'Hi')")
    ensure_audience_columns(con)
    ensure_audience_columns(con)  # idempotent
    columns = [r[0] for r in con.execute("DESCRIBE ml.campaign_audiences").fetchall()]
    assert columns == ["logical_date", "campaign_id", "message", "subject", "copy_writer"]
    assert con.execute("SELECT count(*) FROM ml.campaign_audiences").fetchone()[0] == 1


def test_campaign_copy_writes_treatment_only_and_reports_per_arm() -> None:
    members = pl.DataFrame(
        {"customer_id": IDS[:200], "segment": ["Champions"] * 200, "cluster_name": [None] * 200}
    )
    groups = ["treatment" if i % 4 else "control" for i in range(200)]
    products = [{"product_id": "P1", "name": "Oak Mug Set", "price": 12.5, "category": "Home",
                 "reason": "popular right now"}]  # fmt: skip
    campaign = Campaign(
        "CMP010", "Spring picks", "sms", "rule", "frequency>=1", None, None, 200, 0.25,
        message_template="Hi {{first_name}}, {{top_product_name}} is back.",
        copy_writers="builtin|template",
    )  # fmt: skip
    context = CopyContext(
        Guardrails(["Oak Mug Set"]), CopyConfig(log_to_mlflow=False, use_cache=False, llm=None),
        logical_date=date(2026, 3, 1),
    )  # fmt: skip
    written = campaign_copy(
        campaign, members, groups, dict.fromkeys(IDS[:200], products), context, "salt"
    )
    for group, message, subject in zip(groups, written.messages, written.subjects, strict=True):
        assert (message is not None) == (group == "treatment") and subject is None
    templated = [m for m, a in zip(written.messages, written.arms, strict=True)
                 if a == "template" and m]  # fmt: skip
    assert set(templated) == {"Hi {{first_name}}, Oak Mug Set is back."}
    reports = written.reports
    assert set(reports) == {"builtin", "template"}
    assert sum(r.messages for r in reports.values()) == groups.count("treatment")
    assert all(r.final_failures == 0 and r.fallbacks == 0 for r in reports.values())
