"""Shared widgets of the app's pages: safe calls into the library, metrics, assumption tables, charts.

No arithmetic here: values come from the library's results and are only formatted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from billshape.errors import BillshapeInputError

T = TypeVar("T")


def attempt(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call the library; on bad input show its one-line message (never a traceback) and return ``None``."""
    try:
        return fn(*args, **kwargs)
    except BillshapeInputError as exc:
        from billshape.present.labels import cli_message

        # library fields (gpus) in the words this app has shown so far (--gpus); the plan view's errors name
        # scenario YAML paths (horizon_months), which stay as they are
        yaml_paths = getattr(fn, "__module__", "").endswith(".views.plan")
        st.error(cli_message(exc, field=not yaml_paths), icon=":material/error:")
    except Exception as exc:  # a bug, not the user's fault: one line, like the CLI
        st.error(f"internal error ({type(exc).__name__}): {exc}", icon=":material/bug_report:")
    return None


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
    """Every assumption a result used, with its source and date, in an expander."""
    import pandas as pd

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
