"""Helpers of the reliability tests (no tests here).

* :func:`make_shop` -- a small generated shop whose customers carry *canary* PII: every
  first name starts with ``Zqfn`` and every e-mail ends in ``@pii-canary.test``, so a leak
  is found by a plain substring search in any table, file or artifact, with no false hit.
* :func:`run_stages` -- the declared pipeline (:data:`ml.pipeline.DAILY`, every stage the
  Airflow DAG runs, through the same runner) in a child process that can SIGKILL itself at
  a named point.
  Killing from inside at an exact place is the same event for the warehouse as a SIGKILL
  from outside at that moment, and it is deterministic.
* fingerprints of the published snapshot and PII scanners.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-10-31"
CANARY_NAME_PREFIX = "Zqfn"
CANARY_EMAIL_DOMAIN = "pii-canary.test"
# What a leak looks like, lower-cased (the scanners lower-case what they read).
CANARY_NEEDLES = (CANARY_NAME_PREFIX.lower(), CANARY_EMAIL_DOMAIN)
PIPELINE_RUNS_TIMING = ("run_id", "stage_seconds", "total_seconds", "started_at", "finished_at")

# Child process: run stages from `start` on; SIGKILL itself at `kill_at`. Prints a marker
# line per finished stage so the parent can tell how far it got.
DRIVER = r"""
import functools, importlib, json, os, signal, sys

spec = json.loads(sys.argv[1])
os.environ["AFFINITY_HOME"] = spec["home"]
as_of, kill = spec["as_of"], spec.get("kill_at") or ""


def die(point):
    print(f"KILLED-AT {point}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def kill_on_call(module_name, name, calls=1, after=True):
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    seen = [0]

    def hooked(*args, **kwargs):
        if not after and seen[0] + 1 == calls:
            die(kill)
        result = original(*args, **kwargs)
        seen[0] += 1
        if after and seen[0] == calls:
            die(kill)
        return result

    setattr(module, name, hooked)


if kill == "ingest:mid_batch":  # inside the batch transaction, after 3 files were loaded
    kill_on_call("ml.ingest.loader", "_reconcile", calls=3)
elif kill == "publish:mid_copy":  # 2 tables copied into the new snapshot file
    kill_on_call("ml.publish.snapshot", "table_checksum", calls=2)
elif kill == "publish:before_swap":  # new file complete and verified, not yet swapped in
    kill_on_call("ml.publish.snapshot", "_swap_in", after=False)
elif kill == "publish:after_swap":  # renamed into place, run not yet recorded
    kill_on_call("ml.publish.snapshot", "fsync_dir", after=False)


if spec.get("fast_train"):  # ALS with its search (it must beat popularity), no BPR, plots
    import ml.train
    from ml.train.config import TrainConfig

    fast = TrainConfig(bpr_enabled=False, log_plots=False)
    ml.train.train = functools.partial(ml.train.train, config=fast)

# Imported lazily: an ingest-only run must not pay for dbt, MLflow and implicit.
from ml.orchestration.runner import run_stages
from ml.pipeline import RunContext

ctx = RunContext(
    as_of,
    run_id=spec["run_id"],
    input_path=spec["landing"],
    top_n=spec.get("top_n", 10),
    full_refresh=bool(spec.get("full_refresh")),
)


def after_each(name, summary):
    print(f"STAGE-DONE {name}", flush=True)
    if kill == f"after:{name}":
        die(kill)


run_stages(ctx, spec.get("start"), spec.get("stop_after"), after_each=after_each)
print("RUN-DONE", flush=True)
"""


@dataclass
class StageRun:
    """What a :func:`run_stages` child did."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -9

    @property
    def finished(self) -> bool:
        return self.returncode == 0 and "RUN-DONE" in self.stdout

    @property
    def stages_done(self) -> list[str]:
        return [
            line.split()[1] for line in self.stdout.splitlines() if line.startswith("STAGE-DONE")
        ]

    def tail(self) -> str:
        return self.stdout[-3000:] + "\n--- stderr ---\n" + self.stderr[-6000:]


def child_env(home: Path) -> dict[str, str]:
    """Environment of a child process working on ``home`` (one BLAS thread, quiet)."""
    return {
        **os.environ,
        "AFFINITY_HOME": str(home),
        "OPENBLAS_NUM_THREADS": "1",
        "AFFINITY_TASK_RETRIES": "0",
        "PYTHONUNBUFFERED": "1",
    }


def run_stages(
    home: Path,
    landing: Path,
    *,
    run_id: str,
    as_of: str = AS_OF,
    start: str = "ingest",
    stop_after: str = "publish",
    kill_at: str | None = None,
    fast_train: bool = True,
    top_n: int = 10,
    full_refresh: bool = False,
    timeout: float = 900,
) -> StageRun:
    """Run the pipeline's task bodies for ``as_of`` in a child process.

    Parameters
    ----------
    home, landing : Path
        The Affinity home and the landing folder the ingest reads.
    run_id : str
        Run id recorded in ``pipeline_runs`` by the publish stage.
    start, stop_after : str
        First and last stage (a re-run after a crash resumes where it died, like an
        Airflow retry of the task that was running).
    kill_at : str, optional
        ``after:<stage>``, ``ingest:mid_batch``, ``publish:mid_copy``,
        ``publish:before_swap`` or ``publish:after_swap``: SIGKILL there.
    fast_train : bool
        Train without BPR and plots (these tests are about the warehouse, not the model).
    full_refresh : bool
        The run's full refresh: dbt rebuilds its incremental models, every customer is
        scored (what an incremental night must equal).
    """
    spec = {
        "home": str(home),
        "landing": str(landing),
        "as_of": as_of,
        "run_id": run_id,
        "start": start,
        "stop_after": stop_after,
        "kill_at": kill_at,
        "fast_train": fast_train,
        "top_n": top_n,
        "full_refresh": full_refresh,
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(spec)],
        env=child_env(home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return StageRun(done.returncode, done.stdout, done.stderr)


def make_shop(
    landing: Path, *, customers: int = 300, products: int = 100, days: int = 90, seed: int = 7
) -> Path:
    """Generate a small shop into ``landing`` and give its customers canary PII."""
    from ml.datagen import generate_shop

    generate_shop(landing, customers=customers, products=products, days=days, seed=seed)
    path = landing / "customers.parquet"
    frame = pl.read_parquet(path)
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    frame.with_columns(
        (pl.lit(CANARY_NAME_PREFIX) + index.cast(pl.String).str.zfill(5)).alias("first_name"),
        (pl.lit("zq.") + index.cast(pl.String).str.zfill(5) + "@" + CANARY_EMAIL_DOMAIN).alias(
            "email"
        ),
    ).write_parquet(path)
    return landing


# --------------------------------------------------------------------------- snapshot


def snapshot_path(home: Path) -> Path:
    return home / "published" / "affinity.duckdb"


def published_fingerprint(home: Path, path: Path | None = None) -> dict[str, object]:
    """Checksums of every published table; ``pipeline_runs`` as its last row without timings.

    ``pipeline_runs`` is the run history (ids and times differ by nature); its last row
    still has to agree on the date, the model and every table's row count and checksum.
    """
    from ml.publish import snapshot_checksums

    target = path or snapshot_path(home)
    fingerprint: dict[str, object] = dict(snapshot_checksums(target))
    fingerprint.pop("pipeline_runs", None)
    con = duckdb.connect(str(target), read_only=True)
    try:
        columns = [
            name
            for (name, *_) in con.execute("describe pipeline_runs").fetchall()
            if name not in PIPELINE_RUNS_TIMING
        ]
        row = con.execute(
            f"select {', '.join(columns)} from pipeline_runs order by finished_at desc limit 1"
        ).fetchone()
    finally:
        con.close()
    fingerprint["pipeline_runs (last run, no timings)"] = repr(
        {c: (dict(v) if isinstance(v, dict) else v) for c, v in zip(columns, row, strict=True)}
    )
    return fingerprint


def last_run_id(home: Path) -> str:
    con = duckdb.connect(str(snapshot_path(home)), read_only=True)
    try:
        return con.execute(
            "select run_id from pipeline_runs order by finished_at desc limit 1"
        ).fetchone()[0]
    finally:
        con.close()


def snapshot_opens_and_reads(home: Path) -> dict[str, int]:
    """Open the snapshot read-only like an analyst and count every table."""
    con = duckdb.connect(str(snapshot_path(home)), read_only=True)
    try:
        tables = [r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()]
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


# --------------------------------------------------------------------------- PII scans


def scan_duckdb(path: Path, *, skip_schemas: tuple[str, ...] = ()) -> list[str]:
    """Every text column of every table or view holding a canary, and every PII-named column."""
    from ml.publish.privacy import PII_COLUMNS

    found = []
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns where table_catalog = current_database() "
            "order by 1, 2, 3"
        ).fetchall()
        for schema, table, column, dtype in columns:
            if schema in skip_schemas:
                continue
            where = f"{schema}.{table}.{column}"
            if column.lower() in PII_COLUMNS:
                found.append(f"{where} is a PII column")
            if dtype != "VARCHAR":
                continue
            value = f'lower("{column}")'
            hits = con.execute(
                f'select count(*) from "{schema}"."{table}" where '
                + " or ".join(f"contains({value}, '{needle}')" for needle in CANARY_NEEDLES)
            ).fetchone()[0]
            if hits:
                found.append(f"{where}: {hits} value(s) with input PII")
    finally:
        con.close()
    return found


def _needle_bytes() -> list[bytes]:
    encodings = ("utf-8", "utf-16-le", "utf-32-le")
    return [needle.encode(e) for needle in CANARY_NEEDLES for e in encodings]


def scan_file(path: Path) -> list[str]:
    """A file's bytes (lower-cased, in UTF-8/16/32) and, for NumPy files, its string values."""
    found = []
    content = path.read_bytes().lower()
    for needle in _needle_bytes():
        if needle in content:
            found.append(f"{path}: contains {needle!r}")
    if path.suffix in (".npy", ".npz"):
        loaded = np.load(path, allow_pickle=False)
        arrays = [loaded[k] for k in loaded.files] if path.suffix == ".npz" else [loaded]
        for array in arrays:
            if array.dtype.kind in "US":
                values = {str(v).lower() for v in array.ravel()}
                if any(n in v for v in values for n in CANARY_NEEDLES):
                    found.append(f"{path}: a string array holds input PII")
    return found


def scan_sqlite(path: Path) -> list[str]:
    """Every text value of every table of a SQLite database (MLflow's params, tags, ...)."""
    found = []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in con.execute(f'select * from "{table}"'):
                for value in row:
                    text = value.decode("utf-8", "ignore") if isinstance(value, bytes) else value
                    if isinstance(text, str) and any(n in text.lower() for n in CANARY_NEEDLES):
                        found.append(f"{path} table {table}: {text[:120]!r}")
    finally:
        con.close()
    return found


def index_map_files(home: Path) -> set[Path]:
    """Every logged ``customer_ids.npy`` (the models' customer index maps) in the home."""
    return set((home / "mlartifacts").rglob("customer_ids.npy"))


def index_map_ids(path: Path) -> set[str]:
    return {str(v) for v in np.load(path, allow_pickle=False)}


# --------------------------------------------------------------------------- erasure search


def _duckdb_hits(path: Path, needles: list[str], skip: set[str]) -> dict[str, int]:
    """``{schema.table: rows holding a needle}`` over every table and view of a DuckDB file.

    A row holds a needle when its whole text (every column, any type) contains it.
    """
    hits: dict[str, int] = {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        relations = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() order by 1, 2"
        ).fetchall()
        condition = " or ".join("contains(CAST(t AS VARCHAR), ?)" for _ in needles)
        for schema, table in relations:
            name = f"{schema}.{table}"
            if name in skip:
                continue
            hits[name] = con.execute(
                f'select count(*) from "{schema}"."{table}" t where {condition}', needles
            ).fetchone()[0]
    finally:
        con.close()
    return hits


def _file_holds(path: Path, needles: list[str]) -> bool:
    content = path.read_bytes()
    encoded = [n.encode(e) for n in needles for e in ("utf-8", "utf-16-le", "utf-32-le")]
    if any(n in content for n in encoded):
        return True
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.dtype.kind in "US":
            return any(n in str(v) for v in array.ravel() for n in needles)
    return False


def search_home(home: Path, needles: list[str]) -> dict[str, dict[str, int]]:
    """Search every store of a home for ``needles`` (the landing input files aside).

    Returns ``{store: {place: hits}}`` for every place searched (0 where clean): the
    warehouse's tables and views in every schema (``raw.erasure_requests``, the audit
    record, and its staging view aside), every snapshot (live and archived), every MLflow artifact file, every
    text value of MLflow's database, every file dbt and the publish left in the home.
    """
    found: dict[str, dict[str, int]] = {}
    found["warehouse"] = _duckdb_hits(
        home / "warehouse.duckdb",
        needles,
        skip={"raw.erasure_requests", "staging.stg_raw__erasure_requests"},
    )
    published = home / "published"
    for snapshot in [published / "affinity.duckdb", *sorted(published.glob("history/*.duckdb"))]:
        found[f"snapshot {snapshot.relative_to(published)}"] = _duckdb_hits(
            snapshot, needles, set()
        )
    for store in ("mlartifacts", "dbt", "publish-work"):
        files = (
            [p for p in (home / store).rglob("*") if p.is_file()] if (home / store).exists() else []
        )
        found[store] = {str(p.relative_to(home)): int(_file_holds(p, needles)) for p in files}
    con = sqlite3.connect(f"file:{home / 'mlflow.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        found["mlflow.db"] = {}
        for table in tables:
            values = (v for row in con.execute(f'select * from "{table}"') for v in row)
            texts = (v.decode("utf-8", "ignore") if isinstance(v, bytes) else v for v in values)
            found["mlflow.db"][table] = sum(
                1 for t in texts if isinstance(t, str) and any(n in t for n in needles)
            )
    finally:
        con.close()
    return found
