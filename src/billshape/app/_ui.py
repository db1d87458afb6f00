"""Shared widgets of the app's pages: build a request and run its chain (:func:`run`), safe calls into the library
(:func:`attempt`), metrics, assumption tables, charts.

No arithmetic here: values come from the library's results and are only formatted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import streamlit as st

from billshape.errors import BillshapeInputError

T = TypeVar("T")


def attempt(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call the library; on bad input show its one-line message in the app's words (never a traceback, never a
    CLI flag) and return ``None``.

    Fields are named by their widget labels (:data:`billshape.app.labels.COMMON`); the Plan page's errors name
    scenario YAML paths (``product.users_start``), which its editor shows, so they stay as they are.
    """
    from billshape.app import labels

    yaml_paths = getattr(fn, "__module__", "").endswith(".views.plan")
    return attempt_in(None if yaml_paths else labels.COMMON, fn, *args, **kwargs)


def attempt_in(words: Mapping[str, str] | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """:func:`attempt` with the field -> label table ``words`` (``None``: fields as they are)."""
    try:
        return fn(*args, **kwargs)
    except BillshapeInputError as exc:
        from billshape.app.labels import app_message

        st.error(app_message(exc, words), icon=":material/error:")
    except Exception as exc:  # a bug, not the user's fault: one line, like the CLI
        st.error(f"internal error ({type(exc).__name__}): {exc}", icon=":material/bug_report:")
    return None


def run(request_type: type, **fields: Any) -> Any:
    """Build the verb's request from the widgets' values and run its chain (:func:`billshape.chains.run`).

    This is the app's whole contract with the library: build a request, run it, render the Result. Bad input
    (a wrong value, or a request the chain refuses) shows as one message naming the page's widget labels
    (:func:`billshape.app.labels.table`), and the call returns ``None``.
    """
    from billshape.app import labels

    return attempt_in(labels.table(request_type), _build_and_run, request_type, fields)


def _build_and_run(request_type: type, fields: dict) -> Any:
    from billshape.chains import run as run_chain

    return run_chain(request_type(**fields))


def fmt(value: Any, unit: str = "") -> str:
    """A number for people: ``$235,200``, ``94,080``, ``0.3003``, ``1.25e+11``."""
    from billshape.present.format import money

    return money(value, unit)


def metrics(items: list[tuple[str, str, str | None]], widths: list[float] | None = None) -> None:
    """A row of ``st.metric`` cards: (label, value, help); ``widths`` gives relative card widths."""
    cols = st.columns(widths or len(items))
    for col, (label, value, help_text) in zip(cols, items):
        col.metric(label, value, help=help_text, border=True)


def assumptions_table(result, title: str = "Assumptions and sources", expanded: bool = True) -> None:
    """Every assumption a result used, with its source and date, in an expander; before it, the result's
    warnings (a catalog figure older than its kind's threshold, a price dated after the pricing date) and the
    date it priced at, where it states one."""
    import pandas as pd

    as_of = getattr(result, "as_of", None)
    if isinstance(as_of, str) and as_of:
        st.caption(f"Priced at **{as_of}** (the date every catalog price was read at).")
    for line in getattr(result, "warnings", None) or []:
        st.warning(line, icon=":material/schedule:")

    rows = [
        {
            "assumption": a.name,
            "value": fmt(a.value) if not isinstance(a.value, str) else a.value,
            "unit": a.unit or "",
            "source": a.source,
            "as of": a.as_of or "",
        }
        for a in result.assumptions
    ]
    with st.expander(f"{title} ({len(rows)})", expanded=expanded):
        st.table(pd.DataFrame(rows), hide_index=True)


def page_header(title: str, question: str, example: str) -> None:
    st.title(title)
    st.markdown(f"**{question}**")
    st.caption(example)


def altair(chart) -> None:
    st.altair_chart(chart, width="stretch")
