"""billshape's web app (Streamlit): every calculator in the browser, each result with its sourced assumptions.

Start it with ``billshape app`` (serves on 127.0.0.1). The entry script is :mod:`billshape.app.main`; each page
is a module of :mod:`billshape.app.views` with a ``render()`` function, registered in ``main.PAGES``. Pages are
thin shells: they collect inputs, call the library and draw its results; they do no arithmetic of their own.
"""
