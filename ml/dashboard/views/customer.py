"""Customer lookup: profile, segment, recommendations with their reasons, campaigns."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ml.dashboard.views.common import load, number, snapshot_or_stop, table

PROFILE_TILES = (
    ("recency_days", "Days since last order", 0),
    ("frequency", "Orders", 0),
    ("monetary", "Spend (net)", 2),
    ("avg_order_value", "Average order", 2),
)


def render() -> None:
    st.title("Customer lookup")
    version = snapshot_or_stop()
    default = st.query_params.get("customer") or load("default_customer", version) or ""
    customer_id = st.text_input("Customer id", value=default, help="e.g. C0000001").strip()
    if not customer_id:
        st.info("Type a customer id.")
        return
    st.query_params["customer"] = customer_id
    page = load("customer", version, customer_id)
    if not page.found:
        st.warning(f"No customer `{customer_id}` in this snapshot (ids are case-sensitive).")
        return

    st.subheader(f"Customer {customer_id}")
    cols = st.columns(len(PROFILE_TILES))
    for col, (key, label, digits) in zip(cols, PROFILE_TILES, strict=True):
        col.metric(label, number(page.profile.get(key), digits))
    segment = page.segment
    st.markdown(
        f"**RFM segment:** {segment.get('rfm_segment') or 'no purchases yet'} "
        f"(R {segment.get('r_score') or '-'} · F {segment.get('f_score') or '-'} · "
        f"M {segment.get('m_score') or '-'}) · **cluster:** {segment.get('cluster_name') or '-'}"
        f" · **top predicted category:** {segment.get('top_affinity_category') or '-'}"
    )
    with st.expander("Full profile"):
        st.table(pd.DataFrame([page.profile]).T.rename(columns={0: "value"}).astype(str))

    st.subheader("Recommendations")
    table(page.recommendations, empty="No recommendation for this customer.", digits=3)
    st.subheader("Campaigns")
    table(
        page.campaigns,
        empty="This customer is in no campaign audience of this snapshot.",
    )
