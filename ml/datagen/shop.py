"""``generate_shop``: draw a whole synthetic shop and write it as contract Parquet files."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from ml.config import DEFAULT_SHOP_END
from ml.datagen.activity import simulate_activity
from ml.datagen.activity_frames import events_frame, order_lines_frame, orders_frame
from ml.datagen.campaigns import CAMPAIGNS, campaigns_frame
from ml.datagen.catalog import build_catalog, products_frame
from ml.datagen.common import IdTables, Period, random_stream
from ml.datagen.defects import EXPECTED_DEFECTS_SCHEMA, inject_defects
from ml.datagen.people import build_customers, customers_frame
from ml.datagen.reviews import draw_reviews, reviews_frame
from ml.datagen.uplift import (
    TRUTH_DURATION_DAYS,
    TRUTH_MIN_DAYS,
    TRUTH_STARTS_DAYS_BEFORE_END,
    apply_uplift,
    ground_truth_campaigns,
    ground_truth_frame,
    write_truth,
)
from ml.ingest.contract import ENTITIES, Entity
from ml.ingest.files import write_parquet_atomically
from ml.warehouse.tables import POLARS_TYPES  # a contract column's type in the Parquet file

log = logging.getLogger("ml.datagen")

GENERATED_ENTITIES = (
    "customers",
    "products",
    "orders",
    "order_lines",
    "events",
    "reviews",
    "campaigns",
)
EXPECTED_DEFECTS_FILE = "_expected_defects.parquet"


def conform(frame: pl.DataFrame, entity: Entity) -> pl.DataFrame:
    """Select the entity's columns in contract order, cast to their Parquet types."""
    return frame.select(pl.col(c.name).cast(POLARS_TYPES[c.dtype]) for c in entity.columns)


def validate_arguments(
    customers: int,
    products: int,
    days: int,
    defect_rate: float,
    campaign_uplift: float | None = None,
) -> None:
    if customers < 1 or products < 1 or days < 1:
        raise ValueError(
            f"customers, products and days must be >= 1 (got {customers}, {products}, {days})"
        )
    if not 0.0 <= defect_rate <= 1.0:
        raise ValueError(f"defect_rate must be within [0, 1] (got {defect_rate})")
    if campaign_uplift is not None:
        if not 0.0 <= campaign_uplift <= 1.0:
            raise ValueError(f"campaign_uplift must be within [0, 1] (got {campaign_uplift})")
        if days < TRUTH_MIN_DAYS:
            raise ValueError(
                f"campaign_uplift needs days >= {TRUTH_MIN_DAYS} (the ground-truth campaigns "
                f"start {TRUTH_STARTS_DAYS_BEFORE_END} days before the end and run "
                f"{TRUTH_DURATION_DAYS} days; a week of history must come before)"
            )


def generate_shop(
    out_dir: str | os.PathLike[str],
    *,
    customers: int,
    products: int,
    days: int,
    seed: int,
    defect_rate: float = 0.0,
    end_date: str = DEFAULT_SHOP_END,
    campaign_uplift: float | None = None,
) -> dict[str, int]:
    """Write the input contract as Parquet files ``<out_dir>/<entity>.parquet``.

    Writes customers, products, orders, order_lines, events, reviews and campaigns
    covering the ``days`` days whose last day is ``end_date``. The same arguments give
    byte-identical files.

    Parameters
    ----------
    out_dir : path-like
        Landing folder, created if missing.
    customers, products : int
        Customers and products in the shop (>= 1).
    days : int
        Length of the period in days (>= 1).
    seed : int
        Seed of every random stream.
    defect_rate : float, default 0.0
        Share of bad rows to add per entity (0..1). With defects, affected files are
        written all-Utf8 and ``_expected_defects.parquet`` lists ``entity, source_row,
        rule`` for every bad row.
    end_date : str, default ``ml.config.DEFAULT_SHOP_END``
        Last day of the period (YYYY-MM-DD); the period ends at the following midnight.
    campaign_uplift : float, optional
        Simulate two ground-truth campaigns (:mod:`ml.datagen.uplift`): one where each
        treatment customer makes an extra purchase with this probability, and a placebo;
        their true effects go to ``_campaign_truth.parquet``. ``None`` (default): no
        campaign has any effect, and the shop is the same as before this option existed.

    Returns
    -------
    dict of str to int
        Rows written per entity (defect rows included).

    Notes
    -----
    Events grow with customers x days: about 0.23 events per customer-day (500k
    customers over 90 days give ~10M events); products only shape the catalog.
    """
    validate_arguments(customers, products, days, defect_rate, campaign_uplift)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    period = Period.ending(end_date, days)
    began = time.perf_counter()

    catalog = build_catalog(products, period, random_stream(seed, "catalog"))
    people = build_customers(customers, period, catalog, random_stream(seed, "customers"))
    activity = simulate_activity(random_stream(seed, "activity"), people, catalog, period)
    reviews = draw_reviews(random_stream(seed, "reviews"), activity, catalog, period)
    ids = IdTables.numbered(customers, products)
    truth_specs = (
        ground_truth_campaigns(campaign_uplift, customers, first_number=len(CAMPAIGNS) + 1)
        if campaign_uplift is not None
        else ()
    )
    truth = None
    if truth_specs:
        # After reviews, on its own stream: the baseline shop stays exactly as it was.
        activity, truth = apply_uplift(
            random_stream(seed, "uplift"), activity, people, catalog, period, truth_specs, ids
        )
    log.info(
        "simulated %s sessions, %s orders in %.1f s",
        f"{len(activity.sessions):,}",
        f"{len(activity.orders):,}",
        time.perf_counter() - began,
    )

    builders: dict[str, Callable[[], pl.DataFrame]] = {
        "customers": lambda: customers_frame(people, ids),
        "products": lambda: products_frame(catalog, ids),
        "orders": lambda: orders_frame(activity, ids),
        "order_lines": lambda: order_lines_frame(activity, ids),
        "events": lambda: events_frame(activity, ids),
        "reviews": lambda: reviews_frame(reviews, catalog, ids),
        "campaigns": lambda: campaigns_frame(
            customers,
            catalog,
            period,
            ground_truth_frame(truth_specs, period) if truth_specs else None,
        ),
    }
    counts: dict[str, int] = {}
    expected: list[pl.DataFrame] = []
    for name in GENERATED_ENTITIES:
        started = time.perf_counter()
        frame = conform(builders[name](), ENTITIES[name])
        if defect_rate > 0:
            rng = random_stream(seed, f"defects/{name}")
            frame, found = inject_defects(ENTITIES[name], frame, defect_rate, rng, products)
            expected.append(found)
        write_parquet_atomically(frame, out / f"{name}.parquet")
        counts[name] = frame.height
        elapsed = time.perf_counter() - started
        log.info(
            "%-11s %12s rows in %5.1f s (%s rows/s)",
            name,
            f"{frame.height:,}",
            elapsed,
            f"{frame.height / max(elapsed, 1e-9):,.0f}",
        )
        del frame

    write_expected_defects(out, expected, defect_rate)
    write_truth(out, truth)
    total = time.perf_counter() - began
    log.info(
        "shop of %s customers x %d days: %s events (%.3f per customer-day), %s rows in %.1f s",
        f"{customers:,}",
        days,
        f"{counts['events']:,}",
        counts["events"] / (customers * days),
        f"{sum(counts.values()):,}",
        total,
    )
    return counts


def write_expected_defects(out: Path, found: list[pl.DataFrame], defect_rate: float) -> None:
    """Write the defect list, or remove a stale one when this shop has no defects."""
    path = out / EXPECTED_DEFECTS_FILE
    if defect_rate <= 0:
        path.unlink(missing_ok=True)
        return
    frame = pl.concat(found) if found else pl.DataFrame(schema=EXPECTED_DEFECTS_SCHEMA)
    write_parquet_atomically(frame, path)
    log.info(
        "injected %s defect rows (%s)",
        f"{frame.height:,}",
        ", ".join(f"{r}={n}" for r, n in frame.group_by("rule").len().sort("rule").iter_rows()),
    )
