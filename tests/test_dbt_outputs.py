"""The output side of the dbt project: staging of the ``ml`` tables and the published marts.

A generated shop is built (features), then the ``ml`` tables the Python steps write are
filled with small, known partitions (three logical dates around the as-of date) and the
outputs are built as the pipeline builds them (``dbt build --select tag:outputs``). The
Python steps themselves are not under test here: their tables are written by hand so each
expected row is known.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dbt_helpers import (
    REPO_ROOT,
    SHOP_AS_OF,
    copy_home,
    generate_and_ingest,
    ingest_files,
    query,
    relations,
    scalar,
    warehouse,
)

from ml.campaigns.audiences import AUDIENCE_COLUMNS as CAMPAIGN_AUDIENCE_COLUMNS
from ml.campaigns.measurement import RESULT_COLUMNS
from ml.pipeline import FEATURE_SELECTION, OUTPUT_SELECTION
from ml.serving.recommend import RECOMMENDATION_COLUMNS
from ml.serving.segments import (
    AUDIENCE_COLUMNS,
    CLUSTER_COLUMNS,
    CUSTOMER_AFFINITY_COLUMNS,
    PROFILE_COLUMNS,
)
from ml.serving.similar import SIMILAR_COLUMNS
from ml.warehouse.dbt import build_features, run_dbt

MODELS = REPO_ROOT / "dbt_project" / "models"
BEFORE, AS_OF, AFTER = date(2026, 6, 29), date(2026, 6, 30), date(2026, 7, 1)
PARTITIONS = (BEFORE, AS_OF, AFTER)
# Published tables read from a dated ml table, and the ml staging views.
DATED_OUTPUTS = ("recommendations", "similar_products", "cluster_profiles", "affinity_audiences")
ML_VIEWS = (
    "stg_ml__recommendations",
    "stg_ml__similar_products",
    "stg_ml__customer_clusters",
    "stg_ml__cluster_profiles",
    "stg_ml__affinity_audiences",
    "stg_ml__customer_affinity",
    "stg_ml__campaign_audiences",
    "stg_ml__campaign_results",
    "stg_ml__campaign_insights",
)


def build_outputs(home: Path, as_of: date | str) -> None:
    """What the pipeline's dbt_outputs stage runs after the ML steps."""
    run_dbt(["build", "--select", *OUTPUT_SELECTION], as_of=as_of, home=home)


def create_table(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> None:
    """An empty ml.<table> with the columns and types a Python step declares."""
    spec = ", ".join(f"{name} {dtype}" for name, dtype in columns.items())
    con.execute(f"create or replace table ml.{table} ({spec})")


def write_ml_tables(home: Path) -> tuple[list[str], list[str]]:
    """Fill the scoring and segment tables of schema ml with one partition per date.

    Every value carries its partition's date (model_version, cluster and category
    names), so a published row tells which partition it came from. Returns the customers
    and products used.
    """
    con = duckdb.connect(str(warehouse(home)))
    try:
        customers = [
            r[0]
            for r in con.execute(
                "select customer_id from marts.dim_customers order by 1 limit 3"
            ).fetchall()
        ]
        products = [
            r[0]
            for r in con.execute(
                "select product_id from marts.dim_products where is_product order by 1 limit 3"
            ).fetchall()
        ]
        con.execute("create schema if not exists ml")
        # The schemas the Python steps write (their column constants), so a drift between
        # a writer and its staging view fails here.
        for table, table_columns in (
            ("recommendations", RECOMMENDATION_COLUMNS),
            ("similar_products", SIMILAR_COLUMNS),
            ("customer_clusters", CLUSTER_COLUMNS),
            ("cluster_profiles", PROFILE_COLUMNS),
            ("affinity_audiences", AUDIENCE_COLUMNS),
            ("customer_affinity", CUSTOMER_AFFINITY_COLUMNS),
        ):
            create_table(con, table, table_columns)
        for day in PARTITIONS:
            tag = day.isoformat()
            for i, customer in enumerate(customers):
                for rank, product in enumerate(products, start=1):
                    con.execute(
                        "insert into ml.recommendations (logical_date, customer_id, rank, "
                        "product_id, score, reason_code, model_name, model_version) "
                        "values (?, ?, ?, ?, ?, 'popular_overall', 'test-model', ?)",
                        [day, customer, rank, product, 1.0 / rank, tag],
                    )
                con.execute(
                    "insert into ml.customer_clusters "
                    "(logical_date, customer_id, cluster_id, cluster_name) values (?, ?, ?, ?)",
                    [day, customer, i % 2, f"cluster {i % 2} {tag}"],
                )
                con.execute(
                    "insert into ml.affinity_audiences "
                    "(logical_date, category, rank, customer_id, affinity) values (?, ?, ?, ?, 0.5)",
                    [day, f"category {tag}", i + 1, customer],
                )
                con.execute(
                    "insert into ml.customer_affinity "
                    "(logical_date, customer_id, top_category, affinity) values (?, ?, ?, 0.5)",
                    [day, customer, f"category {tag}"],
                )
            for cluster_id in (0, 1):
                con.execute(
                    "insert into ml.cluster_profiles (logical_date, cluster_id, cluster_name, "
                    "customers, share, top_categories, k, silhouette) "
                    "values (?, ?, ?, 1, 0.5, 'a, b', 2, 0.3)",
                    [day, cluster_id, f"cluster {cluster_id} {tag}"],
                )
            con.execute(
                "insert into ml.similar_products (logical_date, product_id, rank, "
                "similar_product_id, score, reason, method) "
                "values (?, ?, 1, ?, 0.9, 'bought together', 'hybrid')",
                [day, products[0], products[1]],
            )
    finally:
        con.close()
    return customers, products


def write_campaign_tables(home: Path, customers: list[str]) -> None:
    """Audiences of campaign T1 launched on BEFORE - 1 (and re-built later, which must not
    count), T2 launched after the as-of date; results measured on BEFORE and AS_OF."""
    con = duckdb.connect(str(warehouse(home)))
    try:
        create_table(con, "campaign_audiences", CAMPAIGN_AUDIENCE_COLUMNS)
        rows = [
            (date(2026, 6, 28), "T1", customers[0], "treatment", 1, "hi"),
            (date(2026, 6, 28), "T1", customers[1], "control", 2, None),
            (BEFORE, "T1", customers[2], "treatment", 1, "hi again"),
            (AFTER, "T2", customers[0], "treatment", 1, "later"),
        ]
        for day, campaign, customer, group, rank, message in rows:
            con.execute(
                "insert into ml.campaign_audiences (logical_date, campaign_id, customer_id, "
                "assignment_group, rank, product_ids, message, channel, contact_date) "
                "values (?, ?, ?, ?, ?, ['p'], ?, 'email', ?)",
                [day, campaign, customer, group, rank, message, day],
            )
        create_table(con, "campaign_results", RESULT_COLUMNS)
        for day, name in ((BEFORE, "measured before"), (AS_OF, "measured on")):
            con.execute(
                "insert into ml.campaign_results (logical_date, campaign_id, campaign_name, "
                "conclusion, srm_detected) values (?, 'T0', ?, 'no significant lift', false)",
                [day, name],
            )
    finally:
        con.close()


@pytest.fixture(scope="module")
def features_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop with its features built; no ml table yet."""
    home = tmp_path_factory.mktemp("dbt_outputs") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        generate_and_ingest(home)
        build_features(SHOP_AS_OF, home=home)
    return home


@pytest.fixture(scope="module")
def scored_home(
    features_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], list[str]]:
    """A copy after the scoring and segment steps (no campaign tables), outputs built."""
    home = copy_home(features_home, tmp_path_factory.mktemp("dbt_outputs_scored") / "home")
    customers, products = write_ml_tables(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        build_outputs(home, AS_OF)
    return home, customers, products


# --- groups: the ml staging builds with the outputs, never with the features ----------------


def test_feature_build_creates_no_ml_staging_view(features_home: Path) -> None:
    names = {name for _, name in relations(features_home, ["staging"])}
    assert "stg_raw__customers" in names
    assert not {n for n in names if n.startswith("stg_ml__")}
    assert not relations(features_home, ["outputs"])
    assert "path:models/staging/raw" in FEATURE_SELECTION
    assert "path:models/staging" not in FEATURE_SELECTION


def test_outputs_build_creates_every_ml_staging_view(scored_home) -> None:
    home, _, _ = scored_home
    views = {
        name
        for _, name in query(
            home,
            "select table_schema, table_name from information_schema.tables "
            "where table_schema = 'staging' and table_type = 'VIEW'",
        )
    }
    assert set(ML_VIEWS) <= views


# --- the as-of partition rule ---------------------------------------------------------------


def test_published_tables_hold_the_as_of_partition_only(scored_home) -> None:
    home, customers, products = scored_home
    for table in DATED_OUTPUTS:
        dates = {r[0] for r in query(home, f"select distinct logical_date from outputs.{table}")}
        assert dates == {AS_OF}, table
    recommendations = query(
        home,
        "select customer_id, rank, product_id, model_version from outputs.recommendations "
        "order by customer_id, rank",
    )
    assert recommendations == [
        (customer, rank, product, AS_OF.isoformat())
        for customer in customers
        for rank, product in enumerate(products, start=1)
    ]
    segments = dict(
        query(
            home,
            "select customer_id, top_affinity_category from outputs.customer_segments "
            "where cluster_name is not null",
        )
    )
    assert segments == {c: f"category {AS_OF.isoformat()}" for c in customers}
    assert {r[0] for r in query(home, "select cluster_name from outputs.cluster_profiles")} == {
        f"cluster 0 {AS_OF.isoformat()}",
        f"cluster 1 {AS_OF.isoformat()}",
    }


def test_a_backfill_reads_its_own_partition_and_the_default_the_latest(
    scored_home, tmp_path: Path
) -> None:
    home = copy_home(scored_home[0], tmp_path / "home")
    build_outputs(home, BEFORE)
    for table in DATED_OUTPUTS:
        dates = {r[0] for r in query(home, f"select distinct logical_date from outputs.{table}")}
        assert dates == {BEFORE}, table
    run_dbt(["build", "--select", "tag:outputs"], home=home)  # default as_of: 2100-01-01
    assert {
        r[0] for r in query(home, "select distinct model_version from outputs.recommendations")
    } == {AFTER.isoformat()}


def test_campaign_outputs_are_empty_before_the_campaign_step(scored_home) -> None:
    home, _, _ = scored_home
    for table in ("campaign_audiences", "campaign_results"):
        assert scalar(home, f"select count(*) from outputs.{table}") == 0, table
    published = [
        c
        for (c,) in query(
            home,
            "select column_name from information_schema.columns "
            "where table_schema = 'outputs' and table_name = 'campaign_audiences' "
            "order by ordinal_position",
        )
    ]
    assert published[:4] == ["campaign_id", "campaign_name", "customer_id", "group"]


def test_campaign_audiences_keep_the_first_launch_and_drop_erased_customers(
    scored_home, tmp_path: Path
) -> None:
    home = copy_home(scored_home[0], tmp_path / "home")
    customers = scored_home[1]
    write_campaign_tables(home, customers)
    build_outputs(home, AS_OF)
    assert query(
        home,
        'select campaign_id, customer_id, "group" from outputs.campaign_audiences order by rank',
    ) == [("T1", customers[0], "treatment"), ("T1", customers[1], "control")]
    assert query(home, "select campaign_id, campaign_name from outputs.campaign_results") == [
        ("T0", "measured on")
    ]

    # customers[1] asks to be forgotten: every ml staging view and output drops them.
    landing = home / "landing" / "erasure"
    landing.mkdir(parents=True)
    pl.DataFrame(
        {"customer_id": [customers[1]], "requested_at": [datetime(2026, 6, 30, 12)]}
    ).write_parquet(landing / "erasure_requests.parquet")
    ingest_files(home, landing)
    build_outputs(home, AS_OF)
    assert query(home, "select customer_id from outputs.campaign_audiences") == [(customers[0],)]
    for view in ML_VIEWS:
        columns = {
            c
            for (c,) in query(
                home,
                "select column_name from information_schema.columns "
                "where table_schema = 'staging' and table_name = ?",
                [view],
            )
        }
        if "customer_id" in columns:
            hits = scalar(
                home, f"select count(*) from staging.{view} where customer_id = ?", [customers[1]]
            )
            assert hits == 0, view


# --- products ------------------------------------------------------------------------------


def test_products_publish_the_merchandise_catalogue(scored_home) -> None:
    home, _, _ = scored_home
    merchandise = scalar(home, "select count(*) from marts.dim_products where is_product")
    assert scalar(home, "select count(*) from outputs.products") == merchandise > 0
    assert (
        scalar(
            home,
            "select count(*) from outputs.products p join marts.dim_products d using (product_id) "
            "where p.is_recommendable <> d.is_recommendable or p.product_name is distinct from d.product_name "
            "or p.brand is distinct from d.brand or p.category_source <> d.category_source "
            "or p.is_active is distinct from d.is_active",
        )
        == 0
    )
    # The popularity rank is the order of buyers (ties by id) over the whole catalogue.
    ranked = query(home, "select buyers, product_id from outputs.products order by popularity_rank")
    assert ranked == sorted(ranked, key=lambda r: (-r[0], r[1]))
    assert ranked[0][0] == scalar(home, "select max(unique_buyers) from marts.product_features")


# --- conventions ---------------------------------------------------------------------------


def _model_files() -> dict[str, str]:
    return {
        str(path.relative_to(MODELS)): path.read_text() for path in sorted(MODELS.rglob("*.sql"))
    }


def test_source_is_read_only_in_staging() -> None:
    files = _model_files()
    assert any("source('ml'" in text for text in files.values())
    outside = [
        name
        for name, text in files.items()
        if "source(" in text and not name.startswith("staging/")
    ]
    assert outside == []


def test_published_models_use_the_validated_as_of_and_shared_config(scored_home) -> None:
    for name, text in _model_files().items():
        if name.startswith("outputs/"):
            assert not re.search(r"var\(\s*['\"]as_of", text), name
            assert "config(" not in text, name
    manifest = json.loads((scored_home[0] / "dbt" / "target" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    published = [n for n in models if n["original_file_path"].startswith("models/outputs/")]
    ml_staging = [n for n in models if n["original_file_path"].startswith("models/staging/ml/")]
    files = sorted(p.stem for p in (MODELS / "outputs").glob("pub_*.sql"))
    assert sorted(n["name"] for n in published) == files
    assert len(ml_staging) == len(ML_VIEWS)
    for node in published:
        config = node["config"]
        assert (node["schema"], config["materialized"]) == ("outputs", "table"), node["name"]
        assert "outputs" in config["tags"] and config["contract"]["enforced"], node["name"]
        assert node["alias"] == node["name"].removeprefix("pub_"), node["name"]
    for node in ml_staging:
        assert (node["schema"], node["config"]["materialized"]) == ("staging", "view")
        assert "outputs" in node["config"]["tags"], node["name"]
