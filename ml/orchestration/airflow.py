"""Run the Airflow DAG without servers: ``airflow dags test`` inside ``$AFFINITY_HOME/airflow``.

``affinity run`` prepares the input (generate a shop, import an export, or take a
landing folder), makes sure Airflow's SQLite metadata database and the warehouse pool
exist, and runs ``affinity_daily`` for one logical date in a child process. ``make
airflow`` uses :func:`airflow_env` too, so both modes see the same DAGs and settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from ml.config import DAGS_DIR, PLUGINS_DIR, Paths, paths

log = logging.getLogger(__name__)

DAG_ID = "affinity_daily"
WAREHOUSE_POOL = "affinity_warehouse"
# The Asset the daily DAG's publish emits and the campaigns DAG is scheduled on.
SNAPSHOT_ASSET_NAME = "affinity_snapshot"
SNAPSHOT_ASSET_URI = "affinity://published/affinity.duckdb"
# Static and early: a run for any logical date (backfills of old exports) has its tasks;
# catchup=False keeps the scheduler from filling the gap.
DAG_START_DATE = datetime(2000, 1, 1)


def dag_default_args() -> dict[str, object]:
    """``default_args`` shared by Affinity's DAGs: retries with exponential backoff.

    ``AFFINITY_TASK_RETRIES`` overrides the retry count (tests use 0 to fail fast).
    """
    return {
        "owner": "marketing-data",
        "retries": int(os.environ.get("AFFINITY_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
    }


def snapshot_asset():
    """The Airflow Asset the daily DAG's publish emits and the campaigns DAG runs on."""
    from airflow.sdk import Asset

    return Asset(name=SNAPSHOT_ASSET_NAME, uri=SNAPSHOT_ASSET_URI)


def common_dag_arguments() -> dict[str, object]:
    """``@dag`` arguments every Affinity DAG shares.

    A static, early start date; no catchup; one run at a time (DuckDB has one writer);
    the retries of :func:`dag_default_args`.
    """
    return {
        "start_date": DAG_START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "default_args": dag_default_args(),
    }


def airflow_env(extra: dict[str, str] | None = None, *, home: Path | None = None) -> dict[str, str]:
    """Environment for an Airflow process using the project's DAGs and the Affinity home.

    SQLite metadata in ``$AFFINITY_HOME/airflow``, example DAGs off, Cosmos telemetry off,
    parallelism suited to 2 cores, and one BLAS thread (``implicit`` runs 3-4x slower
    with OpenBLAS threads fighting its own).
    """
    home = (Paths(Path(home).resolve()) if home else paths()).ensure()
    env = dict(os.environ)
    env.update(
        {
            "AFFINITY_HOME": str(home.home),
            "AIRFLOW_HOME": str(home.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home.airflow_home / 'airflow.db'}",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "AIRFLOW__COSMOS__CACHE_DIR": str(home.cosmos_cache),
            # dbt inside Cosmos tasks: no usage tracking (it writes .user.yml into the repo).
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            # dbt inside Cosmos tasks writes to task logs and the run log, never a terminal:
            # no colour codes (unless the user's environment asks for them).
            "DBT_USE_COLORS": os.environ.get("DBT_USE_COLORS", "false"),
            "DBT_USE_COLORS_FILE": os.environ.get("DBT_USE_COLORS_FILE", "false"),
            # `airflow dags test` imports graphviz for its optional --save-dagrun/--show-dagrun
            # rendering, which `affinity run` never uses; without graphviz it warns on every run.
            "PYTHONWARNINGS": ",".join(
                w
                for w in (os.environ.get("PYTHONWARNINGS"), "ignore:Could not import graphviz")
                if w
            ),
            "OPENBLAS_NUM_THREADS": "1",
            "MLFLOW_TRACKING_URI": home.mlflow_tracking_uri,
            "NO_PROXY": "*",
            # `airflow standalone` starts its components as `airflow ...` from PATH.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        }
    )
    env.update(extra or {})
    return env


def _airflow(
    args: list[str],
    env: dict[str, str],
    *,
    check: bool = True,
    pass_fds: tuple[int, ...] = (),
    output: TextIO | None = None,
) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    log.debug("running %s", " ".join(cmd))
    if output is not None:
        output.flush()
    return subprocess.run(
        cmd,
        env=env,
        check=check,
        pass_fds=pass_fds,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )


def ensure_airflow(env: dict[str, str], output: TextIO | None = None) -> None:
    """Create or upgrade Airflow's metadata database and the warehouse pool (idempotent).

    ``output``: file for the commands' output (default: this process's).
    """
    marker = Path(env["AIRFLOW_HOME"]) / ".migrated"
    if not marker.exists():
        log.info("initialising Airflow metadata in %s", env["AIRFLOW_HOME"])
        _airflow(["db", "migrate"], env, output=output)
        marker.touch()
    # Warehouse writers take turns: DuckDB allows one read-write process per file. Set
    # once per metadata database: each `airflow pools set` is a ~10 s Airflow start-up.
    pool_marker = Path(env["AIRFLOW_HOME"]) / f".pool-{WAREHOUSE_POOL}-1"
    if not pool_marker.exists():
        _airflow(
            ["pools", "set", WAREHOUSE_POOL, "1", "tasks that write the DuckDB warehouse"],
            env,
            output=output,
        )
        pool_marker.touch()


def run_dag(
    logical_date: str,
    conf: dict[str, object],
    *,
    pass_fds: tuple[int, ...] = (),
    output: TextIO | None = None,
    echo: TextIO | None = None,
    on_poll: Callable[[], None] | None = None,
    dag_id: str = DAG_ID,
    env: dict[str, str] | None = None,
) -> float:
    """Run ``affinity_daily`` (or ``dag_id``) for ``logical_date`` with ``conf`` as its params.

    Parameters
    ----------
    logical_date : str
        ``YYYY-MM-DD``.
    conf : dict
        The run's params.
    pass_fds : tuple of int
        Descriptors the ``airflow dags test`` process inherits (the run lock).
    output : text file, optional
        Where Airflow's output goes (the run log); default: this process's stdout/stderr.
    echo : text stream, optional
        With ``output``: also copy every line here (``--verbose``).
    on_poll : callable, optional
        Called about every second while the DAG runs (progress).
    dag_id : str
        The DAG (tests run probe DAGs).
    env : dict, optional
        Airflow's environment (default :func:`airflow_env`).

    Returns
    -------
    float
        Wall-clock seconds of the DAG run.

    Raises
    ------
    RuntimeError
        If any task fails (Airflow's log says which).
    """
    env = env or airflow_env()
    ensure_airflow(env, output)
    started = time.perf_counter()
    cmd = [
        str(Path(sys.executable).with_name("airflow")),
        *["dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
    ]
    if output is not None:
        output.flush()
    piped = output is not None and echo is not None
    stdout = subprocess.PIPE if piped else output
    stderr = subprocess.STDOUT if output is not None else None
    with subprocess.Popen(
        cmd, env=env, pass_fds=pass_fds, stdout=stdout, stderr=stderr, text=piped
    ) as process:
        copier = _start_copy(process.stdout, (output, echo)) if piped else None
        while process.poll() is None:
            if on_poll is not None:
                on_poll()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1.0)
        if copier is not None:
            copier.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        where = "the task log above" if output is None or echo is not None else "the run log"
        raise RuntimeError(
            f"DAG {dag_id} failed for {logical_date} (exit {process.returncode}); {where} "
            "names the failing task. Fix the cause and re-run the same date: every task replaces "
            "its outputs."
        )
    return seconds


def _start_copy(source, targets: tuple[TextIO | None, ...]) -> threading.Thread:
    """Copy ``source`` line by line to every target, in a thread (``--verbose``)."""

    def copy() -> None:
        for line in source:
            for target in targets:
                if target is not None:
                    target.write(line)
                    target.flush()

    thread = threading.Thread(target=copy, name="airflow-output", daemon=True)
    thread.start()
    return thread


def serve_airflow(port: int = 8080) -> int:
    """Run ``airflow standalone`` on the project's DAGs until asked to stop; return its status.

    Parses the dbt project first (the DAG renders from its manifest). Ctrl-C, SIGINT or
    SIGTERM to this process, or any of them to the ``make`` running it, stops it with
    its components (:func:`ml.orchestration.supervise.run_until_stopped`).
    """
    from ml.orchestration.supervise import run_until_stopped
    from ml.warehouse.dbt import parse_dbt_project

    # Bound to this machine unless AIRFLOW__API__HOST says otherwise: a local SQLite
    # standalone is a development server (SimpleAuthManager, plaintext passwords), and
    # Airflow's default 0.0.0.0 makes it warn that the deployment "looks like production".
    extra = {"AIRFLOW__API__PORT": str(port)}
    extra["AIRFLOW__API__HOST"] = os.environ.get("AIRFLOW__API__HOST", "127.0.0.1")
    env = airflow_env(extra)
    ensure_airflow(env)
    parse_dbt_project()
    log.info(
        "Airflow UI on http://localhost:%d (user admin; password in %s)",
        port,
        Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated",
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    return run_until_stopped([airflow, "standalone"], env)


def serve_mlflow(port: int = 5000) -> None:
    """Run the MLflow UI on the Affinity home's tracking database until interrupted."""
    home = paths().ensure()
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "ui",
        "--backend-store-uri",
        home.mlflow_tracking_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log.info("MLflow UI on http://localhost:%d (backend %s)", port, home.mlflow_tracking_uri)
    os.execve(cmd[0], cmd, airflow_env())
