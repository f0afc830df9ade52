"""Review insight downstream, on a generated shop: demotion in scoring, campaign exclusion.

One shop is generated, and a best seller gets four recent one-star reviews from customers
who bought it (what a bad batch looks like), plus two campaigns launching the day after
the as-of date: a promotional one over every buyer and a ``review_sentiment`` one (service
outreach). Everything then runs for real: the ingest, the declared ``review_insight``
stage (sentiment model in MLflow), the dbt features, an ALS fitted on the marts, scoring
and the campaign audiences. About a minute: marked slow (the rules themselves are unit
tested quickly in ``tests/test_review_rules.py``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from test_campaigns_support import fit_als

from ml.warehouse import connect
from ml.warehouse.tables import read_frame

AS_OF = "2026-06-30"
END = datetime(2026, 7, 1)
SHOP = {"customers": 1_500, "products": 200, "days": 60, "seed": 11, "end_date": AS_OF}
COMPLAINTS = (
    "Terrible quality. It broke after two days, very disappointed.",
    "Awful, fell apart the first time I used it. Do not buy.",
    "Cheap and flimsy, broken on arrival. Worst purchase this year.",
    "Horrible. Stopped working after a week, a waste of money.",
)
PROMO, SERVICE = "TPROMO", "TSERVICE"

pytestmark = pytest.mark.slow


def _read(sql: str, params: list | None = None) -> pl.DataFrame:
    with connect(read_only=True) as con:
        return read_frame(con, sql, params or [])


def _bad_batch(landing: Path) -> str:
    """Four recent one-star reviews of the best seller, by opted-in buyers; its id."""
    orders = pl.read_parquet(landing / "orders.parquet")
    lines = pl.read_parquet(landing / "order_lines.parquet")
    customers = pl.read_parquet(landing / "customers.parquet")
    reviews = pl.read_parquet(landing / "reviews.parquet")
    bought = lines.join(orders, on="order_id").filter(pl.col("customer_id").is_not_null())
    best = (
        bought.group_by("product_id")
        .agg(pl.col("customer_id").n_unique().alias("buyers"))
        .sort(["buyers", "product_id"], descending=[True, False])["product_id"][0]
    )
    opted_in = customers.filter(pl.col("marketing_opt_in"))["customer_id"]
    reviewed = reviews.filter(pl.col("product_id") == best)["customer_id"]
    buyers = (
        bought.filter(
            (pl.col("product_id") == best)
            & pl.col("customer_id").is_in(opted_in.implode())
            & ~pl.col("customer_id").is_in(reviewed.implode())
        )["customer_id"]
        .unique()
        .sort()
        .head(len(COMPLAINTS))
        .to_list()
    )
    assert len(buyers) == len(COMPLAINTS)
    extra = pl.DataFrame(
        {
            "review_id": [f"RBAD{i}" for i in range(len(buyers))],
            "customer_id": buyers,
            "product_id": [best] * len(buyers),
            "rating": [1] * len(buyers),
            "title": ["Very poor"] * len(buyers),
            "body": list(COMPLAINTS),
            "created_at": [END - timedelta(days=3 + 5 * i) for i in range(len(buyers))],
        },
        schema=reviews.schema,
    )
    pl.concat([reviews, extra]).write_parquet(landing / "reviews.parquet")
    return best


def _campaigns(landing: Path) -> None:
    campaigns = pl.read_parquet(landing / "campaigns.parquet")
    start = END + timedelta(hours=9)
    common = {
        "channel": "email",
        "starts_at": start,
        "ends_at": start + timedelta(days=14),
        "max_audience": 100_000,
        "control_share": 0.2,
        "message_template": None,
        "offer": None,
        "discount_percent": None,
        "copy_writers": "builtin",
    }
    extra = pl.DataFrame(
        [
            {
                **common,
                "campaign_id": SERVICE,
                "name": "We are listening",
                "target_type": "review_sentiment",
                "target_value": "negative",
                "priority": 100,
                "goal": None,
            },
            {
                **common,
                "campaign_id": PROMO,
                "name": "Summer picks",
                "target_type": "rule",
                "target_value": "frequency >= 1",
                "priority": 99,
                "goal": "recommend",
            },
        ]
    ).select(campaigns.columns)
    pl.concat([campaigns, extra.cast(campaigns.schema)]).write_parquet(
        landing / "campaigns.parquet"
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    from ml.datagen import generate_shop
    from ml.ingest import ingest
    from ml.orchestration.runner import run_stage
    from ml.pipeline import RunContext
    from ml.warehouse.dbt import build_features

    home = tmp_path_factory.mktemp("review_pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFFINITY_HOME", str(home))
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        landing = home / "landing"
        generate_shop(landing, **SHOP)
        product = _bad_batch(landing)
        _campaigns(landing)
        ingest(landing)
        summary = run_stage("review_insight", RunContext(AS_OF))
        build_features(AS_OF)
        model = fit_als()
        yield home, product, model, summary


@pytest.fixture(autouse=True)
def _shop_home(shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test works in the shop's home (conftest gives each test an empty one)."""
    monkeypatch.setenv("AFFINITY_HOME", str(shop[0]))


def _score(model, demote: bool):
    from ml.serving.config import ScoreConfig
    from ml.serving.recommend import score

    config = ScoreConfig(n=10, num_threads=1, demote_turning_negative=demote)
    return score(AS_OF, config=config, model=model)


def test_the_stage_scores_every_review_and_logs_its_model(shop) -> None:
    home, product, _, summary = shop
    assert summary["reviews"] > 50 and summary["products"] > 10
    assert summary["run_id"] and summary["experiment_id"]
    with connect(read_only=True) as con:
        raw_reviews = con.execute("SELECT count(*) FROM raw.reviews").fetchall()[0][0]
    stored = _read("SELECT * FROM ml.review_sentiment")
    assert stored.height == raw_reviews == summary["reviews"]
    bad = stored.filter(pl.col("review_id").str.starts_with("RBAD"))
    assert set(bad["sentiment_label"]) == {"negative"}
    flagged = _read(
        "SELECT product_id, turning_negative_reason FROM marts.product_review_insights "
        "WHERE is_turning_negative"
    )
    assert product in flagged["product_id"].to_list()


def test_scoring_demotes_the_product_whose_reviews_turned_negative(shop, monkeypatch) -> None:
    home, product, model, _ = shop
    flagged = set(
        _read("SELECT product_id FROM marts.product_review_insights WHERE is_turning_negative")[
            "product_id"
        ]
    )
    off_report = _score(model, demote=False)
    off = _read("SELECT customer_id, rank, product_id FROM ml.recommendations")
    on_report = _score(model, demote=True)
    on = _read("SELECT customer_id, rank, product_id FROM ml.recommendations")
    assert off_report.demoted_products == 0
    assert on_report.demoted_products == len(flagged) and on_report.demoted_rows > 0
    # Same lists, re-ranked: the flagged products after every other product of a list.
    key = ["customer_id", "product_id"]
    assert on.sort(key).select(key).equals(off.sort(key).select(key))
    lists = on.with_columns(pl.col("product_id").is_in(list(flagged)).alias("flagged"))
    worst_kept = lists.filter(~pl.col("flagged")).group_by("customer_id").agg(pl.max("rank"))
    best_flagged = lists.filter(pl.col("flagged")).group_by("customer_id").agg(pl.min("rank"))
    order = worst_kept.join(best_flagged, on="customer_id", suffix="_flagged")
    assert order.height > 0 and (order["rank"] < order["rank_flagged"]).all()
    before = off.filter(pl.col("product_id") == product).select("customer_id", "rank")
    after = on.filter(pl.col("product_id") == product).select("customer_id", "rank")
    moved = before.join(after, on="customer_id", suffix="_after")
    assert (moved["rank_after"] >= moved["rank"]).all()
    assert (moved["rank_after"] > moved["rank"]).sum() > 0
    # The rule is in the stage log with the rest of the config.
    detail = _read(
        "SELECT detail FROM ml.stage_runs WHERE stage = 'recommendations' AND logical_date = ?",
        [date.fromisoformat(AS_OF)],
    )["detail"][0]
    assert '"demote_turning_negative": true' in detail


def test_scoring_run_records_the_demotion_in_mlflow(shop, monkeypatch) -> None:
    import mlflow

    from ml.serving.config import ScoreConfig
    from ml.serving.recommend import score
    from ml.serving.scoring_run import log_scoring_run

    home, _, model, _ = shop
    config = ScoreConfig(n=10, num_threads=1)
    report = score(AS_OF, config=config, model=model)
    logged = log_scoring_run(report, config)
    run = mlflow.get_run(logged["run_id"])
    assert run.data.params["score.demote_turning_negative"] == "True"
    assert run.data.metrics["demoted_products"] == report.demoted_products >= 1
    assert run.data.tags["pipeline"] == "affinity-score"
    assert mlflow.get_experiment(logged["experiment_id"]).name == "affinity-recommenders"


def _audiences(model, config) -> pl.DataFrame:
    from ml.campaigns.audiences import build_audiences

    build_audiences(AS_OF, config=config, model=model)
    return _read(
        "SELECT campaign_id, customer_id, assignment_group, message FROM ml.campaign_audiences "
        "WHERE campaign_id IN (?, ?)",
        [PROMO, SERVICE],
    )


def test_unhappy_reviewers_get_service_outreach_not_promotions(shop, monkeypatch) -> None:
    from ml.campaigns.definitions import CampaignConfig

    home, _, model, _ = shop
    _score(model, demote=True)
    unhappy = _read(
        "SELECT f.customer_id, f.frequency FROM marts.customer_features f "
        "JOIN marts.dim_customers c USING (customer_id) "
        "WHERE f.negative_reviews_30d > 0 AND c.marketing_opt_in"
    )
    assert unhappy.height >= 4  # the bad batch's reviewers, at least
    buyers = set(unhappy.filter(pl.col("frequency") >= 1)["customer_id"])  # the promo's rule
    unhappy = set(unhappy["customer_id"])

    audiences = _audiences(model, CampaignConfig())
    promo = set(audiences.filter(pl.col("campaign_id") == PROMO)["customer_id"])
    service = audiences.filter(pl.col("campaign_id") == SERVICE)
    assert promo and not promo & unhappy
    assert set(service["customer_id"]) == unhappy
    treated = service.filter(pl.col("assignment_group") == "treatment")["message"].to_list()
    assert treated and all("review" in m.lower() for m in treated)

    # Switched off, the promotional campaign reaches them like anyone else.
    audiences = _audiences(model, CampaignConfig(exclude_negative_reviewers=False))
    promo = set(audiences.filter(pl.col("campaign_id") == PROMO)["customer_id"])
    assert promo & buyers
