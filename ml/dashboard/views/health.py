"""Run health: the last runs, rows per published table, stage times, quarantine by rule."""

from __future__ import annotations

import altair as alt
import streamlit as st

from ml.dashboard.queries import QUARANTINE_TABLE
from ml.dashboard.views.common import load, number, ranked_bars, snapshot_or_stop, table


def render() -> None:
    st.title("Run health")
    version = snapshot_or_stop()
    page = load("health", version)
    run = load("latest_run", version)
    runs = page.runs
    if runs.empty:
        st.info("pipeline_runs is empty: this snapshot was not published by a run.")
        return
    last = runs.iloc[0]
    cols = st.columns(4)
    cols[0].metric("Last logical date", str(last["logical_date"]))
    cols[1].metric("Run time", f"{number(last['total_seconds'])} s")
    cols[2].metric("Recommendations", number(last["recommendations_rows"]))
    cols[3].metric(
        "Serving model", f"v{run.serving_version}" if run and run.serving_version else "-"
    )

    st.subheader("Last runs")
    table(runs, empty="No run recorded.")

    left, right = st.columns(2)
    with left:
        ranked_bars("Rows per published table", page.table_rows, value="rows", label="table_name")
    with right:
        st.subheader("Stage times")
        stages = page.stage_seconds.assign(run=lambda d: d["logical_date"].astype(str))
        st.altair_chart(
            alt.Chart(stages)
            .mark_bar()
            .encode(
                x=alt.X("seconds:Q", title="seconds", stack="zero"),
                y=alt.Y("run:N", title="logical date", sort=None),
                color=alt.Color("stage:N", legend=alt.Legend(symbolLimit=0, columns=2)),
                tooltip=["run_id", "stage", alt.Tooltip("seconds:Q", format=".1f")],
            )
            .properties(height=max(140, 36 * stages["run"].nunique())),
            width="stretch",
        )

    st.subheader("Quarantine by rule")
    if page.quarantine is None:
        st.info(
            f"This snapshot carries no `{QUARANTINE_TABLE}` table: quarantined rows are in "
            "the warehouse (`raw.quarantine`, one row per bad input row with its rule), "
            "and the run summary of `affinity run` counts them."
        )
    else:
        table(page.quarantine, empty="No row was quarantined: every input row loaded.")
