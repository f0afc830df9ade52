"""The main job's stages, callable from the CLI (the Airflow DAG comes next)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ml.config import paths

log = logging.getLogger(__name__)

ONLINE_RETAIL_SUFFIXES = (".csv", ".csv.gz")


def prepare_landing(data, *, customers=2_000, products=500, days=90, seed=42) -> Path:
    """Return a landing folder: generated shop (None), imported Online Retail CSV, or a folder."""
    home = paths().ensure()
    if data is None or str(data) == "":
        from ml.datagen import generate_shop

        out = home.landing / "generated"
        generate_shop(out, customers=customers, products=products, days=days, seed=seed)
        return out
    data = Path(data).expanduser().resolve()
    if data.is_dir():
        return data
    if data.is_file() and data.name.endswith(ONLINE_RETAIL_SUFFIXES):
        from ml.importers.online_retail import import_online_retail

        out = home.landing / data.name.split(".")[0]
        import_online_retail(data, out)
        return out
    raise FileNotFoundError(f"{data}: expected a landing folder or an Online Retail .csv/.csv.gz export.")


def run_pipeline(data=None, as_of=None, *, customers=2_000, products=500, days=90, seed=42, retrain=True, top_n=20) -> str:
    """Generate or import the input, then ingest it; return a short summary."""
    from ml.ingest import ingest

    home = paths().ensure()
    started = time.perf_counter()
    landing = prepare_landing(data, customers=customers, products=products, days=days, seed=seed)
    report = ingest(landing)
    return "\n".join(
        [
            "",
            f"Affinity run finished in {time.perf_counter() - started:.1f}s.",
            f"  input:      {landing}",
            f"  ingest:     {report.received_rows:,} received, {report.loaded_rows:,} loaded, "
            f"{report.quarantined_rows:,} quarantined (raw.quarantine)",
            f"  warehouse:  {home.warehouse}",
        ]
    )
