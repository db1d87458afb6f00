"""The app's pages: one module per page, each with ``TITLE``, ``ICON``, ``URL`` and ``render()``.

Adding a page is one new module here plus one line in :data:`billshape.app.main.PAGES`.
"""
