"""The Streamlit script of the web app: ``emoreview app`` runs it as
``streamlit run serving/app/main.py -- --settings FILE``.

It builds the settings and the served endpoints' client once per session, then draws the
four tabs. All behaviour lives in the tab modules; this file only wires them.
"""

from __future__ import annotations

import sys

import streamlit as st

from serving.app.context import AppContext, load_settings
from serving.app.models_view import models_tab
from serving.app.tabs import ask_tab, photo_tab, sentiment_tab


def main(argv: list[str]) -> None:
    st.set_page_config(page_title="emoreview", page_icon="😄", layout="wide")
    if "context" not in st.session_state:
        st.session_state["context"] = AppContext.build(load_settings(argv))
    context: AppContext = st.session_state["context"]
    st.title("emoreview")
    st.caption(
        "Why do customers feel that way? A face's emotion, and the reviews that explain it. "
        f"Served endpoints: {context.client.url}"
    )
    # The Models tab reads MLflow: it runs only while it is the open tab (a rerun of the
    # other tabs never waits on the registry). The others always run, so their inputs
    # survive switching tabs.
    photo, ask, sentiment, models = st.tabs(
        ["Photo", "Ask", "Sentiment", "Models"], key="tab", on_change="rerun"
    )
    with photo:
        photo_tab(context)
    with ask:
        ask_tab(context)
    with sentiment:
        sentiment_tab(context)
    with models:
        if models.open:
            models_tab(context.settings)


main(sys.argv[1:])
