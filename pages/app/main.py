"""The app's entry script: page settings, the shared sidebar once, then navigation to the page the URL names.

app.py serves this file through st.App. Streamlit runs it first for every URL, a sub-page as the first
request after a start included, because no folder named pages/ sits beside it (see app.py).
"""
import streamlit as st

from pages.app.common import sidebar

PAGES = [
    st.Page("../zoo.py", title="Model zoo", icon=":material/grid_view:", default=True),
    st.Page("../sample.py", title="Sample", icon=":material/casino:"),
    st.Page("../latent.py", title="Latent explorer", icon=":material/explore:"),
    st.Page("../conditional.py", title="Conditional generation", icon=":material/pin:"),
    st.Page("../reconstruct.py", title="Reconstruct", icon=":material/flip:"),
    st.Page("../draw.py", title="Draw", icon=":material/draw:"),
    st.Page("../real_or_fake.py", title="Real or fake?", icon=":material/how_to_vote:"),
    st.Page("../metrics.py", title="Metrics and training", icon=":material/monitoring:"),
    st.Page("../train_live.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("../sweeps.py", title="Sweeps", icon=":material/tune:"),
]

st.set_page_config(layout="wide", page_icon="🧪")
page = st.navigation(PAGES)
sidebar()
page.run()
