"""Model: the champion, training metrics over time, links into MLflow."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from ml.config import paths
from ml.dashboard.model_history import (
    experiment_url,
    metrics_long,
    model_history,
    model_url,
)
from ml.dashboard.views.common import load, snapshot_or_stop, table


@st.cache_data(show_spinner=False, ttl=60)
def _history(tracking_uri: str):
    return model_history(tracking_uri)


def render() -> None:
    st.title("Model")
    version = snapshot_or_stop()
    serving = load("serving_history", version)
    history = _history(paths().mlflow_tracking_uri)

    run = load("latest_run", version)
    cols = st.columns(3)
    cols[0].metric(
        "Serving now",
        f"v{run.serving_version}" if run and run.serving_version else "-",
        help="the model version behind the published recommendations "
        "('baseline': popularity, until a first model passes the gate)",
    )
    cols[1].metric(
        "Champion (MLflow)", f"v{history.champion}" if history and history.champion else "-"
    )
    cols[2].metric(
        "Challenger (MLflow)", f"v{history.challenger}" if history and history.challenger else "-"
    )

    if history is None or history.experiment_id is None:
        st.info(
            "No MLflow training recorded in this home yet: `affinity run` trains, "
            "`make mlflow` serves the UI."
        )
    else:
        st.markdown(
            f"[Open the experiment in MLflow]({experiment_url(history.experiment_id)}) · "
            f"[registered model versions]({model_url()}) (start the UI with `make mlflow`)"
        )
        st.subheader("Test-window metrics per training")
        long = metrics_long(history.runs)
        if long.empty:
            st.info("No training has logged metrics yet.")
        else:
            st.altair_chart(
                alt.Chart(long)
                .mark_line(point=True)
                .encode(
                    x=alt.X("as_of:N", title="trained on data up to and including"),
                    y=alt.Y("value:Q", title=None),
                    color="metric:N",
                    tooltip=["as_of", "metric", alt.Tooltip("value:Q", format=".4f")],
                ),
                width="stretch",
            )
        st.subheader("Trainings")
        runs = history.runs.iloc[::-1]
        lines = [
            f"- **{row.as_of}** · {row.decision} · version {row.model_version} · "
            f"NDCG@10 {row.ndcg_at_10:.4f} · [MLflow run]({row.url})"
            if pd.notna(row.ndcg_at_10)
            else f"- **{row.as_of}** · {row.decision} · {row.reason} · [MLflow run]({row.url})"
            for row in runs.itertuples()
        ]
        st.markdown("\n".join(lines))

    st.subheader("Model behind each published run")
    table(serving, empty="No published run.")
