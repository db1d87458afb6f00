"""The app's pages: one module per page, each with ``TITLE``, ``ICON``, ``URL`` and ``render()``.

Adding a page is one new module here plus one line in :data:`billshape.app.main.PAGES`.

This package is deliberately not called ``pages``: Streamlit treats a ``pages/`` folder beside the entry script
as its older file-per-page app and would run these modules as scripts when their URL is requested.
"""
