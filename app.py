"""genmodels app: `streamlit run app.py`. Navigation over pages/; each page draws the shared sidebar (pages/_common.py)."""
import streamlit as st

PAGES = [
    st.Page("pages/zoo.py", title="Model zoo", icon=":material/grid_view:", default=True),
    st.Page("pages/sample.py", title="Sample", icon=":material/casino:"),
    st.Page("pages/latent.py", title="Latent explorer", icon=":material/explore:"),
    st.Page("pages/conditional.py", title="Conditional generation", icon=":material/pin:"),
    st.Page("pages/reconstruct.py", title="Reconstruct", icon=":material/flip:"),
    st.Page("pages/metrics.py", title="Metrics and training", icon=":material/monitoring:"),
]

st.navigation(PAGES).run()
