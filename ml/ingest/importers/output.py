"""Writing contract files: columns in the contract's order and types, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from ml.ingest.contract import ENTITIES
from ml.warehouse.tables import POLARS_TYPES


def conform(frame: pl.DataFrame, entity: str) -> pl.DataFrame:
    """Select ``entity``'s contract columns in order and type, sorted by its primary key.

    Parameters
    ----------
    frame : polars.DataFrame
        Must hold every contract column of the entity (extra columns are dropped).
    entity : str
        Contract entity name (``reviews``, ``products`` ...).
    """
    contract = ENTITIES[entity]
    columns = [pl.col(c.name).cast(POLARS_TYPES[c.dtype]) for c in contract.columns]
    return frame.select(columns).sort(list(contract.primary_key), nulls_last=True)


def write_entities(tables: dict[str, pl.DataFrame], out_dir: Path) -> dict[str, int]:
    """Write each table as ``OUT/<entity>.parquet`` (atomically); return rows per entity."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        target = out_dir / f"{name}.parquet"
        partial = target.with_name(f".{target.name}.partial")
        frame.write_parquet(partial)
        os.replace(partial, target)  # a reader never sees a half-written file
    return {name: frame.height for name, frame in tables.items()}
