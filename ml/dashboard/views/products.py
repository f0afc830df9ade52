"""Products: similar products of a product, the most recommended, review insight."""

from __future__ import annotations

import streamlit as st

from ml.dashboard.queries import REVIEW_INSIGHTS_TABLE
from ml.dashboard.views.common import load, snapshot_or_stop, table


def render() -> None:
    st.title("Products")
    version = snapshot_or_stop()
    wanted = st.query_params.get("product")
    page = load("products", version, wanted)
    if page.product_id is None:
        st.info("No similar products in this snapshot.")
        return
    labels = dict(zip(page.products["product_id"], page.products["product_name"], strict=True))
    ids = list(labels)
    chosen = st.selectbox(
        "Product",
        ids,
        index=ids.index(page.product_id),
        format_func=lambda pid: f"{pid} · {labels[pid]}",
    )
    if chosen != page.product_id:
        st.query_params["product"] = chosen
        page = load("products", version, chosen)

    st.subheader(f"Similar to {labels[page.product_id]}")
    table(page.similar, empty="No similar product for this product.", digits=3)

    st.subheader("Review insight")
    if page.review_insights is None:
        st.caption(f"No `{REVIEW_INSIGHTS_TABLE}` table in this snapshot yet.")
    else:
        table(page.review_insights, empty="No review insight for this product.")

    st.subheader("Most recommended products")
    table(page.most_recommended, empty="No recommendation in this snapshot.")
