"""One data set per home: what ``affinity run`` does when the input comes from another one.

The ingest keeps every *current* file of ``raw.load_manifest`` (a file is replaced only
by a new version of the same name). A run on Online Retail after a run on the generated
shop in the same home therefore kept the shop's events, reviews and campaigns current:
the marts, the models and the published tables mixed both, and the run summary counted
both. The rule, applied before anything is written:

* a home's data set is the landing folder its current files were loaded from;
* ``affinity run`` on another landing folder **refuses**, naming the commands to use:
  another ``AFFINITY_HOME``, ``make clean`` (or removing the home), or ``--replace``;
* with ``--replace`` the home's derived state of the other data set (warehouse, analyst
  snapshots, MLflow runs and registry) is **set aside** under ``replaced/<time>/`` (moved,
  not deleted) and the run starts the home afresh on the new data set. Airflow's run
  history, the dbt parse, the copy cache and the landing folders stay.

Several landing folders of the same data set (a nightly export in dated folders) are
different data sets by this rule: drop each night's files into the same folder
(``$AFFINITY_HOME/landing/inbox``) instead, where a changed file replaces its previous
version.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from ml.config import REPO_ROOT, Paths

log = logging.getLogger(__name__)


class DatasetConflict(RuntimeError):
    """The home holds the current files of another data set; the message says what to do."""


def landing_of(source_file: str, path: str) -> Path:
    """The landing folder a manifest entry was loaded from (its path minus ``source_file``).

    >>> landing_of("orders.parquet", "/h/landing/generated/orders.parquet").as_posix()
    '/h/landing/generated'
    >>> landing_of("events/part-1.csv", "/data/shop/events/part-1.csv").as_posix()
    '/data/shop'
    """
    depth = len(Path(source_file).parts)
    return Path(path).parents[depth - 1]


def current_landings(entries: Iterable[tuple[str, str]]) -> dict[Path, int]:
    """Current files per landing folder, from ``(source_file, path)`` manifest entries."""
    counts: dict[Path, int] = {}
    for source_file, path in entries:
        folder = landing_of(source_file, path)
        counts[folder] = counts.get(folder, 0) + 1
    return counts


def other_landings(current: dict[Path, int], landing: Path) -> dict[Path, int]:
    """The landing folders of ``current`` other than ``landing`` (paths compared resolved)."""
    target = Path(landing).resolve()
    return {folder: n for folder, n in current.items() if Path(folder).resolve() != target}


def read_current_landings(warehouse: Path) -> dict[Path, int]:
    """Current files per landing folder in a warehouse (empty when there is none yet)."""
    if not warehouse.exists():
        return {}
    from ml.warehouse import connect
    from ml.warehouse.tables import table_exists

    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, "raw", "load_manifest"):
            return {}
        entries = con.execute(
            "SELECT source_file, path FROM raw.load_manifest WHERE is_current"
        ).fetchall()
    return current_landings(entries)


def conflict_message(home: Path, landing: Path, others: dict[Path, int], command: str) -> str:
    """What a refused run prints: whose files the home holds and the three ways on.

    ``command`` is the refused command with ``{extra}`` where more arguments go (e.g.
    ``make run ARGS="--data x{extra}"``); without the marker they go at the end.
    """
    if "{extra}" not in command:
        command += "{extra}"
    again, replacing = command.replace("{extra}", ""), command.replace("{extra}", " --replace")
    held = ", ".join(f"{folder} ({n} files)" for folder, n in sorted(others.items()))
    start_over = (
        "make clean"
        if Path(home).resolve() == (REPO_ROOT / ".affinity").resolve()
        else f"rm -rf {home}"
    )
    return (
        f"{home} holds the current input files of another data set: {held}. A run on "
        f"{landing} here would keep those files in raw.* beside the new ones, and the marts, "
        "models and published tables would mix both. Either\n"
        f"  run in another home:   AFFINITY_HOME=/path/to/another/home {again}\n"
        f"  start this home over:  {start_over}   (then the same command)\n"
        f"  replace the data set:  {replacing}\n"
        f"                         (moves the other data set's warehouse, snapshots and MLflow "
        f"runs to {home}/replaced/)"
    )


def set_aside(home: Paths, now: datetime) -> Path:
    """Move a home's derived state to ``replaced/<UTC time>/`` and return that folder.

    Moves the warehouse, the published snapshots, and (when MLflow tracks into the home)
    its database and artifacts. A tracking server named by ``AFFINITY_MLFLOW_TRACKING_URI``
    is left alone: its champion stays until a model of the new data set beats it.
    """
    target = home.home / "replaced" / f"{now:%Y%m%dT%H%M%SZ}"
    target.mkdir(parents=True, exist_ok=False)
    moved = [home.warehouse, home.warehouse.with_name(home.warehouse.name + ".wal"), home.published]
    if home.mlflow_tracking_uri == f"sqlite:///{home.mlflow_db}":
        moved += [home.mlflow_db, home.mlartifacts]
    else:
        log.warning(
            "MLflow tracks to %s, outside the home: its runs and champion stay",
            home.mlflow_tracking_uri,
        )
    for path in moved:
        if path.exists():
            shutil.move(str(path), str(target / path.name))
    home.ensure()
    return target


def check_dataset(
    home: Paths, landing: Path, *, replace: bool, command: str, now: datetime
) -> Path | None:
    """Apply the one-data-set rule before a run on ``landing``.

    Returns
    -------
    Path or None
        Where the other data set's state was moved (``replace``), else None.

    Raises
    ------
    DatasetConflict
        The home holds another data set's current files and ``replace`` is False.
    """
    others = other_landings(read_current_landings(home.warehouse), landing)
    if not others:
        return None
    if not replace:
        raise DatasetConflict(conflict_message(home.home, landing, others, command))
    folder = set_aside(home, now)
    log.warning(
        "replacing the data set of %s: its state was moved to %s",
        ", ".join(str(f) for f in sorted(others)),
        folder,
    )
    return folder
