"""The Streamlit script behind ``affinity dashboard``: page setup and navigation.

Streamlit runs this file top to bottom on every page view; each page reads the
published snapshot read-only (see :mod:`ml.dashboard.views.common`).
"""

from __future__ import annotations

import streamlit as st

from ml.dashboard.views import campaigns, customer, health, model, products, segments

# (render function, title, URL path, icon): stable page addresses; the first page is the
# default, served at the root URL.
PAGES = (
    (health.render, "Run health", "", ":material/monitor_heart:"),
    (segments.render, "Segments", "segments", ":material/donut_small:"),
    (customer.render, "Customer lookup", "customer", ":material/person_search:"),
    (products.render, "Products", "products", ":material/inventory_2:"),
    (campaigns.render, "Campaigns", "campaigns", ":material/campaign:"),
    (model.render, "Model", "model", ":material/model_training:"),
)


def main() -> None:
    st.set_page_config(page_title="Affinity", page_icon=":material/insights:", layout="wide")
    pages = [
        st.Page(render, title=title, url_path=path or None, icon=icon, default=index == 0)
        for index, (render, title, path, icon) in enumerate(PAGES)
    ]
    st.sidebar.markdown("**Affinity** · published snapshot")
    st.navigation(pages).run()


main()
