"""Segments: RFM segment sizes, the recency x frequency grid, behavioural clusters."""

from __future__ import annotations

import altair as alt
import streamlit as st

from ml.dashboard.views.common import load, number, ranked_bars, snapshot_or_stop, table


def render() -> None:
    st.title("Segments")
    version = snapshot_or_stop()
    page = load("segments", version)
    cols = st.columns(3)
    cols[0].metric("Customers", number(page.customers))
    cols[1].metric("RFM segments", number(len(page.rfm_sizes)))
    cols[2].metric("Behavioural clusters", number(len(page.clusters)))

    left, right = st.columns(2)
    with left:
        ranked_bars("RFM segment sizes", page.rfm_sizes, value="customers", label="rfm_segment")
    with right:
        st.subheader("RFM grid: recency x frequency score")
        base = alt.Chart(page.rfm_grid).encode(
            x=alt.X("f_score:O", title="frequency score (5 = most orders)"),
            y=alt.Y("r_score:O", title="recency score (5 = most recent)", sort="descending"),
        )
        st.altair_chart(
            base.mark_rect().encode(
                color=alt.Color("customers:Q", scale=alt.Scale(scheme="blues")),
                tooltip=["r_score", "f_score", "customers", "mean_monetary"],
            )
            + base.mark_text(baseline="middle").encode(text="customers:Q"),
            width="stretch",
        )

    st.subheader("Behavioural clusters")
    st.caption("Figures of clusters under 50 customers are withheld (privacy): they show as empty.")
    table(page.clusters, empty="No cluster profile in this snapshot.")

    st.subheader("Customers by top predicted category")
    table(page.affinity_categories, empty="No predicted category affinity in this snapshot.")
