"""Split a generated landing folder into "everything before the last day" and "the last day".

A nightly export delivers new files: the benchmarks and the incremental-vs-rebuild test
run the pipeline on every day but the last, land the last day's rows as new files
(``<entity>/part-1.parquet``) and run the next day on the same home.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl

# The column that dates each row of a generated landing file (order lines follow their order).
DATED_BY = {
    "events": "occurred_at",
    "orders": "ordered_at",
    "reviews": "created_at",
    "customers": "signed_up_at",
    "products": "first_seen_at",
}


def split_last_day(full: Path, first: Path, last_day_dir: Path) -> date:
    """Write ``full`` as everything before its last day (``first``) and the last day.

    Dated entities become ``<entity>/part-0.parquet`` (before) and ``part-1.parquet``
    (the last day), so the second delivery is new files as a nightly export would be;
    undated entities (campaigns, erasure requests) are small and delivered whole with the
    first part.

    Parameters
    ----------
    full : Path
        A generated landing folder (``<entity>.parquet`` files).
    first, last_day_dir : Path
        Where the two deliveries are written (created if missing).

    Returns
    -------
    datetime.date
        The last day (the next run's logical date).
    """
    events = pl.read_parquet(full / "events.parquet", columns=["occurred_at"])
    last_day = events["occurred_at"].max().date()
    cutoff = pl.lit(last_day).cast(pl.Datetime("us"))
    orders = pl.read_parquet(full / "orders.parquet")
    late_orders = orders.filter(pl.col("ordered_at") >= cutoff)["order_id"]
    for target in (first, last_day_dir):
        target.mkdir(parents=True, exist_ok=True)
    for path in sorted(full.glob("*.parquet")):
        entity = path.stem
        if entity in DATED_BY:
            late = pl.col(DATED_BY[entity]) >= cutoff
        elif entity == "order_lines":
            late = pl.col("order_id").is_in(late_orders.implode())
        else:
            shutil.copyfile(path, first / path.name)
            continue
        frame = pl.read_parquet(path)
        for target, part, rows in ((first, 0, ~late), (last_day_dir, 1, late)):
            (target / entity).mkdir(exist_ok=True)
            frame.filter(rows).write_parquet(target / entity / f"part-{part}.parquet")
    return last_day


def land_last_day(last_day_dir: Path, landing: Path) -> int:
    """Copy the last day's files into ``landing`` (the next night's delivery); return rows."""
    rows = 0
    for part in sorted(last_day_dir.rglob("*.parquet")):
        target = landing / part.relative_to(last_day_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(part, target)
        rows += pl.scan_parquet(part).select(pl.len()).collect().item()
    return rows
