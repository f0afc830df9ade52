"""What every page shares: the snapshot banner, cached loading, number formatting.

Figures are cached per snapshot version (inode, mtime, size): a publish swaps the file,
the version changes, and the next page view reads the new snapshot. Loading opens the
file read-only for one page's queries and closes it (:mod:`ml.dashboard.snapshot`).
"""

from __future__ import annotations

import numbers
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ml.dashboard import queries
from ml.dashboard.snapshot import SnapshotVersion, open_snapshot, snapshot_version

_LOADERS = {
    "latest_run": queries.latest_run,
    "health": queries.health_page,
    "segments": queries.segments_page,
    "default_customer": queries.default_customer,
    "customer": queries.customer_page,
    "products": queries.products_page,
    "campaigns": queries.campaigns_page,
    "serving_history": queries.serving_history,
}


@st.cache_data(show_spinner=False, max_entries=64)
def _load(kind: str, version_key: str, path: str, *args: Any) -> Any:
    # version_key is only part of the cache key: a new snapshot is a new entry.
    with open_snapshot(path) as con:
        return _LOADERS[kind](con, *args)


def load(kind: str, version: SnapshotVersion, *args: Any) -> Any:
    """One page's figures from the snapshot ``version`` (cached until the next publish)."""
    return _load(kind, version.key, version.path, *args)


def snapshot_or_stop() -> SnapshotVersion:
    """The live snapshot's version, after a banner naming its run; stops the page if none."""
    version = snapshot_version()
    if version is None:
        st.warning(
            "Nothing is published yet in this Affinity home. Run `make run` (or "
            "`affinity run`) to build the first snapshot, then reload this page."
        )
        st.stop()
    run = load("latest_run", version)
    if run is None:
        st.caption(f"Snapshot `{version.path}` (no run recorded in pipeline_runs)")
    else:
        model = (
            f"{run.serving_model} version {run.serving_version}"
            if run.serving_version
            else "no recommendations"
        )
        st.caption(
            f"Snapshot of run `{run.run_id}` for **{run.logical_date}** · published "
            f"{_when(run.finished_at)} UTC · serving {model} · `{version.path}`"
        )
    return version


def _when(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def table(data: pd.DataFrame | None, *, empty: str, digits: int = 2) -> None:
    """A static table (every cell in the page text), or ``empty`` when there are no rows.

    Numbers get thousands separators and ``digits`` decimals; missing values (figures
    withheld for privacy, or not applicable) show as empty cells.
    """
    if data is None or data.empty:
        st.info(empty)
        return
    styled = data.style.format(precision=digits, thousands=",", na_rep="").hide(axis="index")
    st.table(styled)


def number(value: Any, digits: int = 0) -> str:
    """A figure for a metric tile: thousands separators, '-' for missing."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{value:,.{digits}f}"
    return str(value)


def ranked_bars(title: str, data: pd.DataFrame, *, value: str, label: str) -> None:
    """A titled chart: horizontal bars of ``value`` per ``label``, the longest first, as
    wide as the column."""
    st.subheader(title)
    st.altair_chart(
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X(f"{value}:Q", title=value),
            y=alt.Y(f"{label}:N", title=None, sort="-x"),
            tooltip=[label, value],
        ),
        width="stretch",
    )
