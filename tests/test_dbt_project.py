"""The dbt project on a generated shop: build, contracts, PII, erasure, point in time, docs.

One module-scoped warehouse is built once (generate -> ingest -> ``build_features``); tests
that change state work on copies of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import uuid
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from dbt_helpers import (
    MART_TABLES,
    SHOP_AS_OF,
    columns,
    copy_home,
    generate_and_ingest,
    ingest_files,
    query,
    relations,
    scalar,
)

from ml.dates import normalize_as_of
from ml.pipeline import FEATURE_SELECTION
from ml.warehouse.dbt import DbtError, _with_vars, build_features, run_dbt

DEV_SALT = "affinity-dev-salt-not-secret"


@pytest.fixture(scope="module")
def shop_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop, ingested and built as of its last day (dev target, dev salt).

    The review-insight stage runs in between, as in the pipeline, so the review marts
    have rows.
    """
    from ml.text.review_insight import understand_reviews

    home = tmp_path_factory.mktemp("dbt_shop")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        mp.setenv("AFFINITY_HOME", str(home))
        generate_and_ingest(home)
        understand_reviews(SHOP_AS_OF)
        build_features(SHOP_AS_OF, home=home)
    return home


@pytest.fixture(scope="module")
def erased_customer(shop_home: Path) -> str:
    """A customer with orders, events and reviews (the most complete footprint)."""
    return scalar(
        shop_home,
        """
        select c.customer_id
        from raw.customers c
        where exists (
            select 1 from raw.orders o
            where o.customer_id = c.customer_id and o.ordered_at < timestamp '2026-05-20'
        )
          and exists (select 1 from raw.events e where e.customer_id = c.customer_id)
        order by (select count(*) from raw.reviews r where r.customer_id = c.customer_id) desc,
                 c.customer_id
        limit 1
        """,
    )


@pytest.fixture(scope="module")
def erased_home(
    shop_home: Path, erased_customer: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the shop after an erasure request and the next (incremental) build."""
    home = copy_home(shop_home, tmp_path_factory.mktemp("dbt_erased") / "home")
    landing = home / "landing" / "erasure"
    landing.mkdir(parents=True)
    pl.DataFrame(
        {"customer_id": [erased_customer], "requested_at": [datetime(2026, 6, 1, 12)]}
    ).write_parquet(landing / "erasure_requests.parquet")
    ingest_files(home, landing)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AFFINITY_PII_SALT", raising=False)
        # A backfill before the request: erasure applies whatever as_of.
        build_features("2026-05-20", home=home)
    return home


# --- build and contracts -------------------------------------------------------------------


def test_build_populates_every_mart(shop_home: Path) -> None:
    for table in MART_TABLES:
        assert scalar(shop_home, f"select count(*) from marts.{table}") > 0, table
    customers = scalar(shop_home, "select count(*) from marts.dim_customers")
    assert scalar(shop_home, "select count(*) from marts.customer_features") == customers
    segments = {
        row[0] for row in query(shop_home, "select segment from marts.customer_rfm_segments")
    }
    assert len(segments) >= 6, segments
    kinds = {row[0] for row in query(shop_home, "select event_kind from marts.interaction_events")}
    assert kinds == {"purchase", "add_to_cart", "view"}


def test_schemas_are_exactly_the_layer_names(shop_home: Path) -> None:
    schemas = {
        schema for schema, _ in relations(shop_home, ["staging", "intermediate", "marts", "seeds"])
    }
    assert schemas == {"staging", "intermediate", "marts", "seeds"}
    assert not relations(shop_home, ["main_staging", "main_marts", "main"])


def test_marts_enforce_contracts_and_describe_every_column(shop_home: Path) -> None:
    manifest = json.loads((shop_home / "dbt" / "target" / "manifest.json").read_text())
    marts = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    assert set(marts) == set(MART_TABLES)
    for name, node in marts.items():
        assert node["config"]["contract"]["enforced"], name
        assert node["description"].strip(), name
        declared = [c["name"] for c in node["columns"].values()]
        actual = [c for c, _ in columns(shop_home, "marts", name)]
        assert declared == actual, name
        for column in node["columns"].values():
            assert column["description"].strip(), f"{name}.{column['name']}"
            assert column["data_type"], f"{name}.{column['name']}"


def test_names_later_steps_rely_on(shop_home: Path) -> None:
    names = {t: [c for c, _ in columns(shop_home, "marts", t)] for t in MART_TABLES}
    assert names["customer_features"][:4] == [
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
    ]
    for column in (
        "avg_order_value",
        "tenure_days",
        "distinct_categories",
        "top_category",
        "avg_days_between_orders",
        "views_30d",
        "carts_30d",
        "review_count",
        "mean_rating",
        "marketing_opt_in",
    ):
        assert column in names["customer_features"], column
    assert names["customer_rfm_segments"][:4] == ["customer_id", "r_score", "f_score", "m_score"]
    assert "segment" in names["customer_rfm_segments"]
    assert names["interactions"][:2] == ["customer_id", "product_id"]
    assert {"purchases", "last_bought_at", "last_viewed_at", "first_at", "last_at"} <= set(
        names["interactions"]
    )
    assert "strength" not in names["interactions"]
    assert {
        "customer_id",
        "product_id",
        "occurred_at",
        "event_kind",
        "quantity",
        "order_id",
    } <= set(names["interaction_events"])
    assert {"is_product", "is_recommendable"} <= set(names["dim_products"])
    assert names["product_popularity"][:3] == ["group_kind", "group_value", "product_id"]


# --- semantics -----------------------------------------------------------------------------


def test_net_quantity_follows_the_signed_quantity_rule(shop_home: Path) -> None:
    wrong = scalar(
        shop_home,
        """
        select count(*) from marts.fct_order_lines
        where net_quantity <> case
            when quantity < 0 then quantity
            when order_status = 'placed' then quantity
            else 0 end
        """,
    )
    assert wrong == 0
    assert scalar(shop_home, "select count(*) from marts.fct_order_lines") == scalar(
        shop_home, "select count(*) from raw.order_lines"
    )
    # Returned / cancelled orders exist in the generated shop and net to zero.
    assert (
        scalar(
            shop_home,
            "select count(*) from marts.fct_orders where order_status <> 'placed' and net_units = 0",
        )
        > 0
    )


def test_rfm_inputs_match_an_independent_computation_on_raw(shop_home: Path) -> None:
    """recency, frequency and monetary recomputed from raw.* for every buyer."""
    expected = {
        row[0]: row[1:]
        for row in query(
            shop_home,
            f"""
            select o.customer_id,
                   date_diff('day', max(o.ordered_at)::date, date '{SHOP_AS_OF}'),
                   count(distinct o.order_id),
                   sum(l.quantity * l.unit_price)
            from raw.orders o
            join raw.order_lines l using (order_id)
            join raw.products p using (product_id)
            where o.status = 'placed' and l.quantity > 0 and coalesce(p.is_product, true)
              and o.customer_id is not null
            group by 1
            """,
        )
    }
    # The generated shop has no reversal lines, so monetary = placed revenue.
    assert scalar(shop_home, "select count(*) from raw.order_lines where quantity < 0") == 0
    actual = {
        row[0]: row[1:]
        for row in query(
            shop_home,
            "select customer_id, recency_days, frequency, monetary "
            "from marts.customer_features where frequency > 0",
        )
    }
    assert actual.keys() == expected.keys()
    for customer, (recency, frequency, monetary) in expected.items():
        got = actual[customer]
        assert got[:2] == (recency, frequency), customer
        assert math.isclose(got[2], monetary, rel_tol=1e-9), customer


def test_interactions_are_the_pair_history_of_interaction_events(shop_home: Path) -> None:
    """Recompute every pair's counts and times in Python from interaction_events."""
    expected: dict[tuple[str, str], dict] = {}
    for customer, product, occurred_at, kind, quantity in query(
        shop_home,
        "select customer_id, product_id, occurred_at, event_kind, quantity "
        "from marts.interaction_events",
    ):
        pair = expected.setdefault(
            (customer, product),
            {"purchase": 0, "units": 0, "add_to_cart": 0, "view": 0, "times": [], "bought": []},
        )
        pair[kind] += 1
        pair["times"].append(occurred_at)
        if kind == "purchase":
            pair["units"] += quantity
            pair["bought"].append(occurred_at)
        elif kind == "view":
            pair.setdefault("viewed", []).append(occurred_at)
    actual = {
        (row[0], row[1]): row[2:]
        for row in query(
            shop_home,
            "select customer_id, product_id, purchases, purchased_units, add_to_carts, views, "
            "first_at, last_at, last_bought_at, last_viewed_at from marts.interactions",
        )
    }
    assert actual.keys() == expected.keys()
    kinds = {"purchase": 0, "add_to_cart": 0, "view": 0}
    for pair, e in expected.items():
        assert actual[pair] == (
            e["purchase"],
            e["units"],
            e["add_to_cart"],
            e["view"],
            min(e["times"]),
            max(e["times"]),
            max(e["bought"], default=None),
            max(e.get("viewed", []), default=None),
        ), pair
        for kind in kinds:
            kinds[kind] += e[kind] > 0
    assert all(kinds.values()), kinds  # the shop exercises every kind


# --- PII -----------------------------------------------------------------------------------


def test_no_pii_column_or_value_past_staging(shop_home: Path) -> None:
    downstream = relations(shop_home, ["intermediate", "marts", "seeds"])
    assert downstream
    emails = {
        r[0]
        for r in query(
            shop_home, "select lower(trim(email)) from raw.customers where email is not null"
        )
    }
    names = {
        r[0]
        for r in query(
            shop_home, "select trim(first_name) from raw.customers where first_name is not null"
        )
    }
    hashes = {
        r[0]
        for r in query(
            shop_home,
            "select email_hash from staging.stg_raw__customers where email_hash is not null",
        )
    }
    assert emails and names and hashes
    for schema, table in downstream:
        cols = columns(shop_home, schema, table)
        for column, dtype in cols:
            assert "email" not in column.lower() and "first_name" not in column.lower(), (
                table,
                column,
            )
            if dtype.upper() != "VARCHAR":
                continue
            values = {
                r[0]
                for r in query(
                    shop_home,
                    f'select distinct "{column}" from {schema}.{table} where "{column}" is not null',
                )
            }
            leaked = values & (emails | names | hashes)
            assert not leaked, (schema, table, column, sorted(leaked)[:3])
            assert not any("@" in v for v in values), (schema, table, column)


def test_staging_keeps_only_a_salted_email_hash(shop_home: Path) -> None:
    staged = [c for c, _ in columns(shop_home, "staging", "stg_raw__customers")]
    assert "email_hash" in staged
    assert "email" not in staged and "first_name" not in staged
    customer, email, email_hash = query(
        shop_home,
        "select r.customer_id, r.email, s.email_hash from raw.customers r "
        "join staging.stg_raw__customers s using (customer_id) where r.email is not null limit 1",
    )[0]
    assert email_hash == hashlib.sha256((DEV_SALT + email.strip().lower()).encode()).hexdigest()


def test_prod_target_requires_the_salt(
    shop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = copy_home(shop_home, tmp_path / "home")
    args = ["run", "--select", "stg_raw__customers", "--target", "prod"]
    monkeypatch.delenv("AFFINITY_PII_SALT", raising=False)
    with pytest.raises(DbtError, match="AFFINITY_PII_SALT is not set"):
        run_dbt(args, as_of=SHOP_AS_OF, home=home)
    monkeypatch.setenv("AFFINITY_PII_SALT", "")  # empty is as good as unset
    with pytest.raises(DbtError, match="AFFINITY_PII_SALT is not set"):
        run_dbt(args, as_of=SHOP_AS_OF, home=home)
    monkeypatch.setenv("AFFINITY_PII_SALT", "s3cret-test-salt")
    run_dbt(args, as_of=SHOP_AS_OF, home=home)
    email, email_hash = query(
        home,
        "select r.email, s.email_hash from raw.customers r "
        "join staging.stg_raw__customers s using (customer_id) where r.email is not null limit 1",
    )[0]
    expected = hashlib.sha256(("s3cret-test-salt" + email.strip().lower()).encode()).hexdigest()
    assert email_hash == expected


def test_the_salt_is_used_but_written_to_no_file(
    shop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distinctive prod salt hashes the emails and appears in no file dbt or DuckDB wrote."""
    home = copy_home(shop_home, tmp_path / "home")
    shutil.rmtree(home / "dbt")  # only this test's target and logs
    salt = f"zq-distinctive-salt-{uuid.uuid4().hex}"
    monkeypatch.setenv("AFFINITY_PII_SALT", salt)
    run_dbt(
        ["build", "--select", *FEATURE_SELECTION, "--target", "prod"], as_of=SHOP_AS_OF, home=home
    )
    run_dbt(["docs", "generate", "--target", "prod"], as_of=SHOP_AS_OF, home=home)

    email, email_hash = query(
        home,
        "select r.email, s.email_hash from raw.customers r "
        "join staging.stg_raw__customers s using (customer_id) where r.email is not null limit 1",
    )[0]
    assert email_hash == hashlib.sha256((salt + email.strip().lower()).encode()).hexdigest()

    written = [path for path in (home / "dbt").rglob("*") if path.is_file()]
    names = {path.name for path in written}
    # The scan covers what would leak: the model's executed SQL, the parse cache, the logs.
    assert {"stg_raw__customers.sql", "partial_parse.msgpack", "manifest.json", "dbt.log"} <= names
    executed = [p for p in written if p.name == "stg_raw__customers.sql" and "run" in p.parts]
    assert executed and "getvariable('affinity_pii_salt')" in executed[0].read_text()
    written += [path for path in home.glob("warehouse.duckdb*") if path.is_file()]
    leaked = [str(path) for path in written if salt.encode() in path.read_bytes()]
    assert leaked == []


# --- erasure and point in time -------------------------------------------------------------


def test_erasure_removes_the_customer_past_staging(erased_home: Path, erased_customer: str) -> None:
    checked = 0
    for schema, table in relations(erased_home, ["staging", "intermediate", "marts"]):
        if "customer_id" not in {c for c, _ in columns(erased_home, schema, table)}:
            continue
        if table == "stg_raw__erasure_requests":
            continue
        hits = scalar(
            erased_home,
            f"select count(*) from {schema}.{table} where customer_id = ?",
            [erased_customer],
        )
        assert hits == 0, (schema, table)
        checked += 1
    assert checked >= 15
    # Their order lines went with their orders.
    orphan_lines = scalar(
        erased_home,
        """
        select count(*) from marts.fct_order_lines l
        join raw.orders o using (order_id) where o.customer_id = ?
        """,
        [erased_customer],
    )
    assert orphan_lines == 0
    # The ingest that loaded the request removed them from raw too; the request stays.
    for table in ("customers", "orders", "events"):
        assert (
            scalar(
                erased_home,
                f"select count(*) from raw.{table} where customer_id = ?",
                [erased_customer],
            )
            == 0
        ), table
    assert (
        scalar(
            erased_home,
            "select count(*) from raw.erasure_requests where customer_id = ?",
            [erased_customer],
        )
        == 1
    )


def test_backfill_sees_nothing_after_as_of(erased_home: Path) -> None:
    """erased_home was rebuilt incrementally as of 2026-05-20, after a build as of 06-30."""
    end = "timestamp '2026-05-21 00:00:00'"
    for table, column in (
        ("fct_events", "occurred_at"),
        ("fct_order_lines", "ordered_at"),
        ("fct_orders", "ordered_at"),
        ("interaction_events", "occurred_at"),
        ("interactions", "last_at"),
        ("dim_customers", "first_seen_at"),
        ("dim_products", "first_seen_at"),
    ):
        assert (
            scalar(erased_home, f"select count(*) from marts.{table} where {column} >= {end}") == 0
        ), table
    assert scalar(erased_home, "select count(*) from marts.fct_events") > 0
    assert {
        r[0] for r in query(erased_home, "select distinct as_of_date from marts.customer_features")
    } == {datetime(2026, 5, 20).date()}
    assert scalar(erased_home, "select min(recency_days) from marts.customer_features") >= 0


# --- docs and the Python entry point -------------------------------------------------------


def test_docs_generate(shop_home: Path) -> None:
    run_dbt(["docs", "generate"], as_of=SHOP_AS_OF, home=shop_home)
    catalog = json.loads((shop_home / "dbt" / "target" / "catalog.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert set(MART_TABLES) <= documented


def test_run_dbt_names_failed_nodes(tmp_path: Path) -> None:
    # An empty warehouse has no raw schema: the staging view cannot be created.
    with pytest.raises(DbtError) as failure:
        run_dbt(["run", "--select", "stg_raw__customers"], home=tmp_path / "empty")
    assert "model.affinity.stg_raw__customers" in str(failure.value)
    assert failure.value.failures and failure.value.failures[0][1] == "error"


def test_nothing_is_written_into_the_repository(shop_home: Path) -> None:
    project = Path(__file__).resolve().parents[1] / "dbt_project"
    for name in ("target", "logs", "dbt_packages", ".user.yml"):
        assert not (project / name).exists(), name
    assert (shop_home / "dbt" / "target" / "manifest.json").exists()


def test_as_of_and_vars_helpers() -> None:
    assert normalize_as_of("2026-06-30") == "2026-06-30"
    assert normalize_as_of(datetime(2026, 6, 30, 13)) == "2026-06-30"
    for bad in ("2026-13-01", "30/06/2026", "latest"):
        with pytest.raises(ValueError):
            normalize_as_of(bad)
    merged = _with_vars(["build", "--vars", "{x: 1}"], {"as_of": "2026-06-30"})
    assert json.loads(merged[-1]) == {"x": 1, "as_of": "2026-06-30"}
    assert _with_vars(["build"], {"as_of": "2026-06-30"})[-2:] == [
        "--vars",
        '{"as_of": "2026-06-30"}',
    ]
    assert FEATURE_SELECTION[0] == "path:seeds"
