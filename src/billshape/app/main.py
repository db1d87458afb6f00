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


# Readable at 1400 px: Streamlit cuts a long metric value ("$159,591,...") and a wide button group ("Model the
# throughpu") to its column; let them shrink and wrap instead (checked by tests/test_app_browser.py).
CSS = """<style>
[data-testid="stMetricValue"] { font-size: clamp(1.35rem, 2.1vw, 2.25rem); }
[data-testid="stMetricValue"] > div { white-space: normal; overflow: visible; text-overflow: clip;
                                      overflow-wrap: anywhere; }
[data-testid="stButtonGroup"] > div { flex-wrap: wrap; overflow-x: visible; row-gap: 0.25rem; }
</style>"""


def main() -> None:
    # An emoji favicon is drawn locally; a ":material/...:" one would be fetched from an outside host.
    st.set_page_config(page_title="billshape", page_icon="🧮", layout="wide")
    st.html(CSS)
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
