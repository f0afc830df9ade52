"""The dashboard's pages, one module each, drawn with Streamlit."""
