"""Campaign audiences on a real warehouse: consent, erasure, cap, max audience, groups,
messages, measurement SQL, and the published tables.

One generated shop is ingested and built with dbt once per module (its campaigns file
replaced by the test campaigns below); tests that change the warehouse work on a copy.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from scipy.stats import binom
from test_campaigns_support import copy_home, prepare_day

from ml.campaigns import CampaignConfig, CampaignError, build_audiences, measure_campaigns
from ml.ingest.contract import ENTITIES
from ml.warehouse import connect
from ml.warehouse.tables import read_frame

SHOP = {"customers": 2_000, "products": 120, "days": 60, "seed": 21, "end_date": "2026-06-30"}
DAY = date(2026, 6, 20)  # launches T01..T05 (they start on the 21st)
LATER = date(2026, 6, 23)  # launches T06, three days later: inside the cap window
EARLY = date(2026, 6, 5)  # launches T07, over by DAY: measured
TEMPLATE = "Hi {{first_name}}, {{ segment }} pick: {{top_product_name}} ({{ top_product_reason }})."


def _campaign(
    cid, target_type, target_value, starts, ends, cap, share, priority, template=TEMPLATE
):
    return {
        "campaign_id": cid,
        "name": f"Test {cid}",
        "channel": "email",
        "target_type": target_type,
        "target_value": target_value,
        "starts_at": datetime.fromisoformat(starts),
        "ends_at": datetime.fromisoformat(ends),
        "max_audience": cap,
        "control_share": share,
        "priority": priority,
        "message_template": template,
    }


def campaign_rows(category: str) -> pl.DataFrame:
    rows = [
        # Priority 100: everyone eligible, so the audience *is* the eligible set.
        _campaign("T01", "rule", "tenure_days>=0", "2026-06-21 09:00", "2026-06-28", 100_000, 0.5, 100),
        _campaign("T02", "segment", "Champions|Loyal Customers|Potential Loyalists",
                  "2026-06-21 09:00", "2026-06-28", 150, 0.2, 50),
        _campaign("T03", "category", category, "2026-06-21 09:00", "2026-07-05", 200, 0.25, 40,
                  "Hi {{first_name}}, new in {{ category }}: "
                  "{% for p in products %}{{ p.name }}{% if not loop.last %}, {% endif %}{% endfor %}"),
        _campaign("T04", "rule", "frequency>=1", "2026-06-21 09:00", "2026-07-05", 300, 0.3, 30),
        _campaign("T05", "cluster", "no purchases yet", "2026-06-21 09:00", "2026-07-05", 100, 0.1, 20),
        _campaign("T06", "rule", "tenure_days>=0", "2026-06-24 09:00", "2026-07-05", 100_000, 0.5, 100),
        _campaign("T07", "rule", "frequency>=1", "2026-06-06 09:00", "2026-06-13 09:00", 400, 0.5, 1),
    ]  # fmt: skip
    schema = {c.name: c.dtype for c in ENTITIES["campaigns"].columns}
    types = {"VARCHAR": pl.String, "TIMESTAMP": pl.Datetime("us"), "INTEGER": pl.Int32}
    types["DOUBLE"] = pl.Float64
    frame = pl.DataFrame(rows)  # the optional copy columns are left out: they load as NULL
    return frame.cast({k: types[v] for k, v in schema.items() if k in frame.columns})


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Shop + test campaigns + erasure requests -> warehouse -> audiences of 3 dates."""
    from ml.datagen import generate_shop
    from ml.ingest import ingest

    home = tmp_path_factory.mktemp("campaigns_home")
    landing = home / "landing" / "shop"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AFFINITY_HOME", str(home))
        generate_shop(landing, **SHOP)
        customers = pl.read_parquet(landing / "customers.parquet")
        orders = pl.read_parquet(landing / "orders.parquet")
        products = pl.read_parquet(landing / "products.parquet")
        category = products["category"].value_counts(sort=True)["category"][0]
        campaign_rows(category).write_parquet(landing / "campaigns.parquet")
        # Erase three opted-in buyers: customers every audience above would want.
        buyers = set(orders.filter(pl.col("ordered_at") < datetime(2026, 6, 1))["customer_id"])
        erased = sorted(
            c for c in customers.filter(pl.col("marketing_opt_in"))["customer_id"] if c in buyers
        )[:3]
        pl.DataFrame(
            {"customer_id": erased, "requested_at": [datetime(2026, 6, 1)] * len(erased)}
        ).write_parquet(landing / "erasure_requests.parquet")
        ingest(landing)
        model = prepare_day(DAY)
        # The marts are as of DAY for all three runs (enough for the campaign logic).
        early = build_audiences(EARLY, model=model)
        report = build_audiences(DAY, model=model)
        later = build_audiences(LATER, model=model)
        measured = measure_campaigns(DAY)
    return {
        "home": home,
        "landing": landing,
        "model": model,
        "erased": erased,
        "customers": customers,
        "reports": (early, report, later),
        "measured": measured,
    }


@pytest.fixture
def use(shop: dict, monkeypatch: pytest.MonkeyPatch):
    """Point AFFINITY_HOME at the module's warehouse (read-only use)."""
    monkeypatch.setenv("AFFINITY_HOME", str(shop["home"]))
    return shop


@pytest.fixture
def copy(shop: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A private copy of the module's warehouse for tests that change it."""
    home = copy_home(shop["home"], tmp_path / "home")
    monkeypatch.setenv("AFFINITY_HOME", str(home))
    return {**shop, "home": home, "landing": home / "landing" / "shop"}


def audiences() -> pl.DataFrame:
    with connect() as con:
        return read_frame(con, "SELECT * FROM ml.campaign_audiences ORDER BY ALL")


def test_launches_follow_the_start_dates(use: dict) -> None:
    early, report, later = use["reports"]
    assert early.launched == ["T07"]
    assert report.launched == ["T01", "T02", "T03", "T04", "T05"]
    assert later.launched == ["T06"]
    dates = audiences().group_by("campaign_id").agg(pl.col("logical_date").unique())
    assert dict(dates.iter_rows()) == {
        **{f"T0{i}": [DAY] for i in range(1, 6)},
        "T06": [LATER],
        "T07": [EARLY],
    }


def test_only_opted_in_and_not_erased_customers_are_in_audiences(use: dict) -> None:
    customers, erased = use["customers"], set(use["erased"])
    opted_out = set(customers.filter(~pl.col("marketing_opt_in"))["customer_id"])
    frame = audiences()
    members = set(frame["customer_id"])
    assert opted_out and erased
    assert not members & opted_out
    assert not members & erased
    # T01 targets everyone (priority 100): it is exactly the opted-in, not erased customers
    # the marts know as of DAY; the erased ones were eligible but for their request.
    with connect() as con:
        known = set(read_frame(con, "SELECT customer_id FROM marts.dim_customers")["customer_id"])
    everyone = set(frame.filter(pl.col("campaign_id") == "T01")["customer_id"])
    opted_in = set(customers.filter(pl.col("marketing_opt_in"))["customer_id"])
    assert everyone == (known & opted_in) - erased
    assert erased <= opted_in


def test_frequency_cap_holds_in_every_7_day_window_and_priority_wins(use: dict) -> None:
    cap = CampaignConfig().frequency_cap
    frame = audiences()
    contacts: dict[str, list[date]] = defaultdict(list)
    for customer, day in frame.select("customer_id", "contact_date").iter_rows():
        contacts[customer].append(day)
    for customer, days in contacts.items():
        for start in days:
            window = [d for d in days if start <= d < start + timedelta(days=7)]
            assert len(window) <= cap, (customer, sorted(days))
    # T01 (priority 100) took everyone, T02 (50) its segments: nobody in both can be in
    # T03..T05 on the same day, nor in T06 three days later.
    both = set(frame.filter(pl.col("campaign_id") == "T01")["customer_id"]) & set(
        frame.filter(pl.col("campaign_id") == "T02")["customer_id"]
    )
    assert both
    later = frame.filter(pl.col("campaign_id").is_in(["T03", "T04", "T05", "T06"]))
    assert not both & set(later["customer_id"])
    capped = use["reports"][1].capped
    assert capped["T01"] == 0 and capped["T04"] > 0


def test_max_audience_holds_and_ranks_are_dense(use: dict) -> None:
    frame = audiences()
    caps = {"T02": 150, "T03": 200, "T04": 300, "T05": 100, "T07": 400}
    sizes = dict(frame.group_by("campaign_id").len().iter_rows())
    for cid, cap in caps.items():
        assert 0 < sizes[cid] <= cap, cid
    # T04 targets buyers: each is either in it or left out by the frequency cap (under
    # its max audience); T07, alone on its date, is cut by its max audience only.
    with connect() as con:
        buyers = con.execute(
            "SELECT count(*) FROM marts.customer_features JOIN marts.dim_customers "
            "USING (customer_id) WHERE frequency >= 1 AND dim_customers.marketing_opt_in "
            "AND customer_id NOT IN (SELECT customer_id FROM raw.erasure_requests)"
        ).fetchall()[0][0]
    capped = use["reports"][1].capped
    assert sizes["T04"] < 300 and sizes["T04"] + capped["T04"] == buyers
    assert sizes["T07"] == min(400, buyers)
    for (cid,), rows in frame.group_by("campaign_id"):
        assert sorted(rows["rank"]) == list(range(1, rows.height + 1)), cid
        assert rows["customer_id"].n_unique() == rows.height


def test_category_audience_is_ranked_by_predicted_affinity(use: dict) -> None:
    frame = audiences().filter(pl.col("campaign_id") == "T03").sort("rank")
    scored = frame.filter(pl.col("affinity").is_not_null())
    assert scored.height > 0.8 * frame.height
    assert scored["affinity"].is_sorted(descending=True)
    # Featured products are of the campaign's category.
    with connect() as con:
        category = con.execute(
            "SELECT target_value FROM staging.stg_raw__campaigns WHERE campaign_id = 'T03'"
        ).fetchall()[0][0]
        products = read_frame(con, "SELECT product_id, category FROM marts.dim_products")
    featured = frame.select(pl.col("product_ids").explode().alias("product_id")).join(
        products, on="product_id"
    )
    assert featured.height >= frame.height
    assert set(featured["category"]) == {category}


def test_control_share_is_within_the_binomial_tolerance(use: dict) -> None:
    frame = audiences()
    for cid, share in {"T01": 0.5, "T06": 0.5, "T04": 0.3}.items():
        rows = frame.filter(pl.col("campaign_id") == cid)
        low, high = binom.interval(0.999, rows.height, share)
        controls = rows.filter(pl.col("assignment_group") == "control").height
        assert low <= controls <= high, (cid, controls, rows.height)


def test_messages_for_treatment_only_without_pii(use: dict) -> None:
    customers = use["customers"]
    frame = audiences()
    treatment = frame.filter(pl.col("assignment_group") == "treatment")
    assert treatment["message"].null_count() == 0
    assert frame.filter(pl.col("assignment_group") == "control")["message"].null_count() == (
        frame.filter(pl.col("assignment_group") == "control").height
    )
    emails = [e.lower() for e in customers["email"].drop_nulls()]
    names = set(customers["first_name"].drop_nulls())
    with connect() as con:
        product_names = read_frame(con, "SELECT product_name FROM marts.dim_products")
    catalogue = sorted(product_names["product_name"].drop_nulls(), key=len, reverse=True)
    for message in treatment["message"]:
        assert "{{first_name}}" in message
        assert "@" not in message
        lowered = message.lower()
        assert not any(e in lowered for e in emails)
        # Product names may share a word with a first name ("Willow"): drop them first.
        for product in catalogue:
            message = message.replace(product, " ")
        assert not names & set(re.findall(r"[A-Za-z]+", message)), message


def test_assignment_and_rows_are_identical_when_a_date_is_rerun(copy: dict) -> None:
    before = audiences()
    build_audiences(DAY, model=copy["model"])
    assert audiences().equals(before)


def test_erased_after_launch_leave_every_audience_on_the_next_run(copy: dict) -> None:
    from ml.ingest import ingest
    from ml.warehouse.dbt import build_features

    member = audiences().filter(pl.col("campaign_id") == "T01")["customer_id"][0]
    erased = [*copy["erased"], member]
    pl.DataFrame(
        {"customer_id": erased, "requested_at": [datetime(2026, 6, 22)] * len(erased)}
    ).write_parquet(copy["landing"] / "erasure_requests.parquet")
    ingest(copy["landing"])
    # The ingest that loads the request removes the customer from every stored audience.
    assert member not in set(audiences()["customer_id"])
    # The next run's marts no longer hold them, so no new audience brings them back.
    build_features(DAY)
    build_audiences(LATER, model=copy["model"])
    assert member not in set(audiences()["customer_id"])


def test_unknown_template_variable_fails_naming_the_campaign(copy: dict) -> None:
    with connect() as con:
        con.execute(
            "UPDATE raw.campaigns SET message_template = 'Hi {{ firstname }}' "
            "WHERE campaign_id = 'T04'"
        )
    with pytest.raises(CampaignError) as error:
        build_audiences(DAY, model=copy["model"])
    message = str(error.value)
    assert "T04" in message and "Test T04" in message and "firstname" in message
    assert "T01" not in message  # the valid campaigns are not blamed


def test_measurement_counts_purchases_in_the_window(use: dict) -> None:
    results = use["measured"].results
    assert results["campaign_id"].to_list() == ["T07"]  # the others are still running
    row = results.row(0, named=True)
    frame = audiences().filter(pl.col("campaign_id") == "T07")
    groups = dict(frame.group_by("assignment_group").len().iter_rows())
    assert (row["treatment_size"], row["control_size"]) == (groups["treatment"], groups["control"])
    # Independently from the landing files: placed orders with a positive line in the window.
    landing = use["landing"]
    orders = pl.read_parquet(landing / "orders.parquet").filter(
        (pl.col("status") == "placed")
        & (pl.col("ordered_at") >= datetime(2026, 6, 6, 9))
        & (pl.col("ordered_at") < datetime(2026, 6, 13, 9))
    )
    lines = pl.read_parquet(landing / "order_lines.parquet").filter(pl.col("quantity") > 0)
    buyers = set(orders.join(lines, on="order_id")["customer_id"].drop_nulls())
    for group, column in (
        ("treatment", "treatment_conversions"),
        ("control", "control_conversions"),
    ):
        members = set(frame.filter(pl.col("assignment_group") == group)["customer_id"])
        assert row[column] == len(members & buyers)
    assert row["window_start"] == datetime(2026, 6, 6, 9)
    assert row["lift_ci_low"] <= row["absolute_lift"] <= row["lift_ci_high"]
    assert 0 <= row["p_value"] <= 1


def test_task_bodies_publish_the_contract_without_pii(copy: dict) -> None:
    from ml.orchestration.runner import run_stage
    from ml.pipeline import CAMPAIGN_MEASUREMENT, RunContext
    from ml.publish import query

    def measure(day: str | None) -> dict:
        return run_stage("measure", RunContext(day), CAMPAIGN_MEASUREMENT)

    measured = measure(DAY.isoformat())
    assert measured["measured"] == ["T07"]
    # Builds the campaign output marts, then publishes: verification refuses PII columns
    # and e-mail-like values.
    outcome = run_stage(
        "publish_results",
        RunContext(DAY.isoformat(), run_id="campaigns__test"),
        CAMPAIGN_MEASUREMENT,
    )
    assert outcome["published"] is True
    assert json.dumps([measured, outcome])  # plain data: fit for XComs
    columns = [r[0] for r in query("DESCRIBE campaign_audiences")]
    assert columns[:5] == ["campaign_id", "campaign_name", "customer_id", "group", "rank"]
    assert {"product_ids", "product_names", "message", "logical_date"} <= set(columns)
    published = query(
        "SELECT campaign_id, count(*), count(message) FROM campaign_audiences GROUP BY ALL ORDER BY 1"
    )
    stored = (
        audiences()
        .filter(pl.col("logical_date") <= DAY)  # T06 launches after DAY
        .group_by("campaign_id")
        .agg(pl.len(), pl.col("message").count())
    )
    assert published == [tuple(r) for r in stored.sort("campaign_id").iter_rows()]
    assert query('SELECT DISTINCT "group" FROM campaign_audiences ORDER BY 1') == [
        ("control",),
        ("treatment",),
    ]
    result = query("SELECT campaign_id, treatment_size, lift_ci_low, p_value FROM campaign_results")
    assert [r[0] for r in result] == ["T07"]
    # Without a date, the measurement follows the published snapshot.
    assert measure(None)["as_of"] == DAY.isoformat()


def test_daily_task_body_returns_plain_data_without_a_champion(copy: dict) -> None:
    from ml.orchestration.runner import run_stage
    from ml.pipeline import RunContext

    # No MLflow champion in this home: ranked by frequency and spend, still launched.
    summary = run_stage("campaigns", RunContext(LATER.isoformat()))
    assert summary["launched"] == ["T06"] and summary["model_version"] is None
    assert json.loads(json.dumps(summary))["sizes"]["T06"]["treatment"] > 0


def test_a_backfill_ranks_with_the_champion_of_its_logical_date(copy: dict) -> None:
    from test_train_support import fast_config

    from ml.orchestration.runner import run_stage
    from ml.pipeline import RunContext
    from ml.serving.model import load_scoring_model
    from ml.train import train
    from ml.train.tracking import CHAMPION, DEFAULT_MODEL_NAME, alias_version

    # Today's champion first, then a backfill trains the early date's own champion:
    # the alias stays on the later version, the history holds both.
    short = fast_config(eval_days=7, validation_days=7, window_min_customers=20)
    late = train((DAY + timedelta(days=1)).isoformat(), config=short)
    early = train((EARLY + timedelta(days=1)).isoformat(), config=short)
    assert late.promoted and early.promoted, (late.reason, early.reason)
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == late.model_version != early.model_version

    def launched(day: date) -> pl.DataFrame:
        with connect() as con:
            return read_frame(
                con,
                "SELECT campaign_id, customer_id, rank, affinity FROM ml.campaign_audiences "
                "WHERE logical_date = ? ORDER BY campaign_id, rank",
                [day],
            )

    # The campaigns stage re-run for the early date (a backfill) ranks with the early
    # champion: its version, and the very affinities that model gives.
    summary = run_stage("campaigns", RunContext(EARLY.isoformat()))
    assert summary["launched"] == ["T07"] and summary["model_version"] == early.model_version
    by_default = launched(EARLY)
    champion = load_scoring_model()  # today's: the later version
    build_audiences(EARLY, model=champion)
    assert not launched(EARLY).equals(by_default)  # the two models rank differently
    then = load_scoring_model(as_of=EARLY + timedelta(days=1))
    assert then.version == early.model_version
    build_audiences(EARLY, model=then)
    assert launched(EARLY).equals(by_default)
    # The later date still ranks with today's champion.
    assert build_audiences(LATER).model_version == late.model_version


def test_only_featurable_recommendations_are_read_and_the_featured_lists_are_unchanged(
    use: dict,
) -> None:
    from ml.campaigns.audience_inputs import load_bestsellers, load_products, load_recommendations
    from ml.campaigns.audiences import featured_products
    from ml.campaigns.session import campaign_session

    n = 2
    with campaign_session() as (con, campaigns):
        products = load_products(con)
        bestsellers = load_bestsellers(con, products)
        members = read_frame(con, "SELECT DISTINCT customer_id FROM ml.recommendations ORDER BY 1")[
            "customer_id"
        ].to_list()
        every = load_recommendations(con, DAY, products, members)
        categories = {c.category for c in campaigns if c.category is not None}
        # Upper case: the campaign's category is matched without case.
        fewer = load_recommendations(
            con, DAY, products, members, featured=n, categories={c.upper() for c in categories}
        )
    assert categories and fewer.height < every.height
    assert (
        fewer.group_by("customer_id").len()["len"].max()
        < every.group_by("customer_id").len()["len"].max()
    )
    for campaign in campaigns:
        kept = featured_products(campaign, members, fewer, bestsellers, n)
        assert kept == featured_products(campaign, members, every, bestsellers, n), campaign
        if campaign.category is not None:  # the category's lists come from its own rows
            fallback = f"popular in {campaign.category}"
            assert any(p["reason"] != fallback for c in members for p in kept[c])
