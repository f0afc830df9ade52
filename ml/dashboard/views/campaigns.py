"""Campaigns: frozen audiences (treatment / control), sample messages, measured lift."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from ml.dashboard.views.common import load, snapshot_or_stop, table

# Conclusions of ml.campaigns.comparison, coloured by what a marketer should read.
CONCLUSION_COLOURS = {
    "positive lift": "#2e7d32",
    "negative lift": "#c62828",
    "no significant lift": "#757575",
}
OTHER_COLOUR = "#f9a825"  # e.g. a sample too small to conclude


def lift_chart(results: pd.DataFrame) -> alt.LayerChart:
    """Absolute conversion lift per campaign with its 95% interval, against zero."""
    data = results.assign(
        label=results["campaign_id"] + " · " + results["campaign_name"].fillna(""),
    )
    base = alt.Chart(data).encode(
        y=alt.Y("label:N", title=None, axis=alt.Axis(labelLimit=320)),
    )
    conclusions = sorted(data["conclusion"].dropna().unique())
    color = alt.Color(
        "conclusion:N",
        scale=alt.Scale(
            domain=conclusions,
            range=[CONCLUSION_COLOURS.get(c, OTHER_COLOUR) for c in conclusions],
        ),
    )
    interval = base.mark_rule(strokeWidth=3).encode(
        x=alt.X("lift_ci_low:Q", title="absolute lift in conversion rate (95% interval)"),
        x2="lift_ci_high:Q",
        color=color,
    )
    point = base.mark_point(filled=True, size=110).encode(
        x="absolute_lift:Q",
        color=color,
        tooltip=[
            "campaign_id",
            "campaign_name",
            alt.Tooltip("absolute_lift:Q", format="+.3f"),
            alt.Tooltip("lift_ci_low:Q", format="+.3f"),
            alt.Tooltip("lift_ci_high:Q", format="+.3f"),
            alt.Tooltip("p_value:Q", format=".3f"),
            "conclusion",
        ],
    )
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    return (zero + interval + point).properties(height=60 * len(data) + 40)


def render() -> None:
    st.title("Campaigns")
    version = snapshot_or_stop()
    page = load("campaigns", version)

    st.subheader("Measured lift")
    if page.results.empty:
        st.info(
            "No campaign has been measured yet: a campaign is measured after its window "
            "ends (the `affinity_campaigns` DAG, or `affinity measure --as-of DATE --publish`)."
        )
    else:
        st.altair_chart(lift_chart(page.results), width="stretch")
        shown = page.results.assign(
            treatment_rate=lambda d: (100 * d["treatment_conversion_rate"]).round(1),
            control_rate=lambda d: (100 * d["control_conversion_rate"]).round(1),
            lift_pts=lambda d: (100 * d["absolute_lift"]).round(1),
            ci_pts=lambda d: (
                "["
                + (100 * d["lift_ci_low"]).round(1).astype(str)
                + ", "
                + (100 * d["lift_ci_high"]).round(1).astype(str)
                + "]"
            ),
            p_value=lambda d: d["p_value"].round(3),
        )[
            [
                "campaign_id",
                "treatment_size",
                "control_size",
                "treatment_rate",
                "control_rate",
                "lift_pts",
                "ci_pts",
                "p_value",
                "sample_too_small",
                "conclusion",
            ]
        ]
        st.caption("Rates and lift in percentage points; 95% interval of the lift.")
        table(shown, empty="")

    st.subheader("Audiences")
    table(page.audiences, empty="No campaign audience in this snapshot.")
    st.subheader("Messages (first treatment customer; `{{first_name}}` is filled by the sender)")
    table(page.messages, empty="No campaign message in this snapshot.")
