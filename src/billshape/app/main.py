"""Streamlit entry script of billshape's app: ``billshape app`` runs ``streamlit run`` on this file.

Pages are listed once, in :data:`PAGES`; each is a module of :mod:`billshape.app.views` with ``TITLE``,
``ICON``, ``URL`` and ``render()``. Adding a page is one new module plus one line here.
"""

from __future__ import annotations

import importlib

import streamlit as st

# The app's pages, in menu order; the first opens by default.
PAGES = [
    "billshape.app.views.train",
    "billshape.app.views.serve",
    "billshape.app.views.breakeven",
    "billshape.app.views.size",
    "billshape.app.views.capacity",
    "billshape.app.views.route",
    "billshape.app.views.plan",
    "billshape.app.views.usage",
]


def pages() -> list:
    """The page modules, imported."""
    return [importlib.import_module(name) for name in PAGES]


def main() -> None:
    # An emoji favicon is drawn locally; a ":material/...:" one would be fetched from an outside host.
    st.set_page_config(page_title="billshape", page_icon="🧮", layout="wide")
    nav = st.navigation(
        [st.Page(m.render, title=m.TITLE, icon=m.ICON, url_path=m.URL, default=(i == 0))
         for i, m in enumerate(pages())],
        position="sidebar",
    )
    with st.sidebar:
        st.caption("**billshape**: the economics of AI systems. Every figure lists the assumptions it used, "
                   "each with its source and date.")
    nav.run()


if __name__ == "__main__":
    main()
