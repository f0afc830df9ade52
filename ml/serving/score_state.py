"""The saved scoring state: what a scoring run keeps for the next one to compare against.

The state of a run's inputs (:func:`current_state`) is its run-wide settings (model,
factors, rules; :func:`run_settings`), the start of its exclusion window, per customer a
hash of their history and of their new-product candidates, and per product whether it is a
collaborative candidate and its category. It is kept in ``ml.score_state*``
(:func:`save_state`, :func:`load_state`); :mod:`ml.serving.incremental` plans the next
run from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl

from ml.serving.config import ScoreConfig
from ml.serving.inputs import ScoringInputs
from ml.serving.model import ScoringModel
from ml.warehouse.tables import ML_SCHEMA, ensure_table, read_frame, table_exists

STATE = "score_state"
STATE_CUSTOMERS = "score_state_customers"
STATE_PRODUCTS = "score_state_products"
STATE_COLUMNS = {
    "logical_date": "DATE",
    "settings": "VARCHAR",
    "window_start": "TIMESTAMP",
    "saved_at": "TIMESTAMP",
}
CUSTOMER_COLUMNS = {"customer_id": "VARCHAR", "history_hash": "UBIGINT", "explore_hash": "UBIGINT"}
PRODUCT_COLUMNS = {"product_id": "VARCHAR", "candidate": "BOOLEAN", "category": "VARCHAR"}


@dataclass
class ScoreState:
    """What a scoring run keeps for the next one (see the module docstring)."""

    logical_date: date
    settings: dict[str, Any]
    window_start: datetime | None
    customers: pl.DataFrame  # customer_id, history_hash, explore_hash
    products: pl.DataFrame  # product_id, candidate, category


# --------------------------------------------------------------------------- fingerprints


def _digest(array: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest()


def run_settings(
    model: ScoringModel,
    config: ScoreConfig,
    cap_feasible: bool,
    demoted: list[str] | None = None,
) -> dict[str, Any]:
    """The run-wide inputs: any change re-scores everyone. The demoted products are kept
    here too but compared apart (:data:`~ml.serving.incremental.PER_LIST_SETTINGS`):
    demotion only reorders the lists that hold a product, so only those are re-scored when
    it flips."""
    rules = asdict(config)
    for batch_only in ("batch_customers", "chunk_size", "num_threads", "keep_dates"):
        rules.pop(batch_only, None)
    return {
        "model": [model.name, model.version, model.family],
        "factors": [
            _digest(model.customer_ids.astype("U")),
            _digest(model.user_factors),
            _digest(model.product_ids.astype("U")),
            _digest(model.item_factors),
        ],
        "rules": rules,
        "cap_feasible": cap_feasible,
        "demoted": sorted(demoted or []),
        "polars": pl.__version__,  # row hashes are polars's: another version, another hash
    }


def history_hashes(history: pl.DataFrame) -> pl.DataFrame:
    """``customer_id, history_hash``: an order-free hash of each customer's history rows."""
    columns = [c for c in ("product_id", "bought", "last_bought_at", "viewed") if c in history]
    return history.group_by("customer_id").agg(
        pl.struct(columns).hash(seed=11).sum().alias("history_hash")
    )


def explore_hashes(candidates: pl.DataFrame | None) -> pl.DataFrame:
    """``customer_id, explore_hash`` of each customer's new-product candidates."""
    if candidates is None or candidates.height == 0:
        return pl.DataFrame(schema={"customer_id": pl.String, "explore_hash": pl.UInt64})
    return candidates.group_by("customer_id").agg(
        pl.struct("product_id", "score", "reason_product_id")
        .hash(seed=13)
        .sum()
        .alias("explore_hash")
    )


def customer_state(inputs: ScoringInputs, candidates: pl.DataFrame | None) -> pl.DataFrame:
    """Per customer of ``inputs``: history and new-product candidate hashes (0 when none)."""
    ids = inputs.customers.select(pl.col("customer_id").cast(pl.String))
    return (
        ids.join(
            history_hashes(inputs.history.with_columns(pl.col("customer_id").cast(pl.String))),
            on="customer_id",
            how="left",
        )
        .join(explore_hashes(candidates), on="customer_id", how="left")
        .with_columns(pl.col("history_hash", "explore_hash").fill_null(0).cast(pl.UInt64))
    )


def product_state(
    inputs: ScoringInputs, model: ScoringModel, categories: np.ndarray | None = None
) -> pl.DataFrame:
    """Per catalogue product: a collaborative candidate (eligible, known to the model)?
    and its category."""
    products = inputs.products
    eligible = products["eligible"].fill_null(False).to_numpy().astype(bool)
    known = model.product_cols(products["product_id"].cast(pl.String).to_numpy()) >= 0
    return pl.DataFrame(
        {
            "product_id": products["product_id"].cast(pl.String),
            "candidate": eligible & known,
            "category": products["category"].cast(pl.String),
        }
    )


# --------------------------------------------------------------------------- state I/O


def load_state(con: duckdb.DuckDBPyConnection) -> ScoreState | None:
    """The state the last scoring run saved, or None."""
    if not all(table_exists(con, ML_SCHEMA, t) for t in (STATE, STATE_CUSTOMERS, STATE_PRODUCTS)):
        return None
    row = con.execute(
        f"SELECT logical_date, settings, window_start FROM {ML_SCHEMA}.{STATE}"
    ).fetchall()
    if len(row) != 1:
        return None
    logical_date, settings, window_start = row[0]
    return ScoreState(
        logical_date,
        json.loads(settings),
        window_start,
        read_frame(con, f"SELECT * FROM {ML_SCHEMA}.{STATE_CUSTOMERS}"),
        read_frame(con, f"SELECT * FROM {ML_SCHEMA}.{STATE_PRODUCTS}"),
    )


def save_state(con: duckdb.DuckDBPyConnection, state: ScoreState) -> None:
    """Replace the saved state (one transaction)."""
    for table, columns in (
        (STATE, STATE_COLUMNS),
        (STATE_CUSTOMERS, CUSTOMER_COLUMNS),
        (STATE_PRODUCTS, PRODUCT_COLUMNS),
    ):
        ensure_table(con, ML_SCHEMA, table, columns)
    con.execute("BEGIN TRANSACTION")
    try:
        for table, frame in ((STATE_CUSTOMERS, state.customers), (STATE_PRODUCTS, state.products)):
            con.execute(f"DELETE FROM {ML_SCHEMA}.{table}")
            con.register("_state_rows", frame.to_arrow())
            con.execute(f"INSERT INTO {ML_SCHEMA}.{table} SELECT * FROM _state_rows")
            con.unregister("_state_rows")
        con.execute(f"DELETE FROM {ML_SCHEMA}.{STATE}")
        con.execute(
            f"INSERT INTO {ML_SCHEMA}.{STATE} VALUES (?, ?, ?, now()::TIMESTAMP)",
            [state.logical_date, json.dumps(state.settings, sort_keys=True), state.window_start],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


# --------------------------------------------------------------------------- this run's state


def window_start(inputs: ScoringInputs, config: ScoreConfig) -> datetime | None:
    """Start of the exclusion window (None: everything ever bought is excluded)."""
    if config.exclusion_days is None:
        return None
    return inputs.history_end - timedelta(days=config.exclusion_days)


def current_state(
    day: date,
    inputs: ScoringInputs,
    model: ScoringModel,
    config: ScoreConfig,
    candidates: pl.DataFrame | None,
    cap_feasible: bool,
    demoted: list[str] | None = None,
) -> ScoreState:
    """The state of this run's inputs (saved after the run for the next one)."""
    return ScoreState(
        day,
        run_settings(model, config, cap_feasible, demoted),
        window_start(inputs, config),
        customer_state(inputs, candidates),
        product_state(inputs, model),
    )
