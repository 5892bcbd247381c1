"""genmodels app: `streamlit run app.py`. The entry script is pages/app/main.py, served through st.App.

Why not this file: Streamlit treats any main script with a folder named pages/ beside it as an old-style
multipage app until st.navigation has run once in the process, so a first request to a sub-page URL
(say /sample) after a start ran that page's file alone, without the entry script and its sidebar, under
a menu of file names. pages/app/main.py has no pages/ folder beside it, so it runs first for every URL.

Before the server answers, pages/app/warm.py loads the model a first visit opens on (st.App's lifespan).
"""
import streamlit as st

from pages.app.warm import lifespan

app = st.App("pages/app/main.py", lifespan=lifespan)
