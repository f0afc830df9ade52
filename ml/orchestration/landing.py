"""The input of a run: a generated shop, an imported export, or a landing folder as it is."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml.config import paths

ONLINE_RETAIL_SUFFIXES = (".csv", ".csv.gz")
# The known uplift of the generated shop's ground-truth campaign (ml.datagen.uplift).
GENERATED_CAMPAIGN_UPLIFT = 0.1


def prepare_landing(
    data: Path | str | None,
    *,
    customers: int = 2_000,
    products: int = 500,
    days: int = 90,
    seed: int = 42,
    campaign_uplift: float | None = None,
) -> Path:
    """Return a landing folder holding contract files for this run.

    Parameters
    ----------
    data : path-like or None
        ``None``: generate a shop into ``$AFFINITY_HOME/landing/generated``. A CSV(.gz)
        file: an Online Retail export, imported into ``$AFFINITY_HOME/landing/<stem>``. A
        folder: used as it is.
    customers, products, days, seed : int
        Size and seed of the generated shop.
    campaign_uplift : float, optional
        The generated shop's ground-truth campaign uplift (``None``: no such campaigns).
    """
    paths().ensure()
    out = landing_folder(data)
    if data is None or str(data) == "":
        from ml.datagen import generate_shop

        generate_shop(
            out,
            customers=customers,
            products=products,
            days=days,
            seed=seed,
            campaign_uplift=campaign_uplift,
        )
    elif out != Path(data).expanduser().resolve():
        from ml.ingest.importers.online_retail import import_online_retail

        import_online_retail(Path(data).expanduser().resolve(), out)
    return out


def landing_folder(data: Path | str | None) -> Path:
    """The landing folder a run on ``data`` ingests (see :func:`prepare_landing`); writes nothing.

    Raises
    ------
    FileNotFoundError
        ``data`` is neither a folder nor an Online Retail CSV(.gz).
    """
    home = paths()
    if data is None or str(data) == "":
        return home.landing / "generated"
    data = Path(data).expanduser().resolve()
    if data.is_dir():
        return data
    if data.is_file() and data.name.endswith(ONLINE_RETAIL_SUFFIXES):
        return home.landing / data.name.split(".")[0]
    raise FileNotFoundError(
        f"{data}: expected a landing folder of contract files or an Online Retail .csv/.csv.gz export."
    )


def latest_data_date(landing: Path) -> str:
    """Return the last order date (YYYY-MM-DD) in a landing folder: the default ``as_of``."""
    files = sorted(
        str(p) for p in landing.glob("orders*") if p.name.endswith((".parquet", ".csv", ".csv.gz"))
    ) + sorted(str(p) for p in (landing / "orders").glob("*") if (landing / "orders").is_dir())
    if not files:
        raise FileNotFoundError(f"{landing}: no orders file; pass --as-of explicitly.")
    reader = "read_parquet" if files[0].endswith(".parquet") else "read_csv"
    con = duckdb.connect()
    try:
        latest = con.execute(
            f"select max(try_cast(ordered_at as timestamp))::date from {reader}(?)", [files]
        ).fetchall()[0][0]
    finally:
        con.close()
    if latest is None:
        raise ValueError(f"{landing}: orders have no readable ordered_at; pass --as-of explicitly.")
    return latest.isoformat()
