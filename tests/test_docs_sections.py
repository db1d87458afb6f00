"""The documentation keeps the sections that document each shipped feature (a merge once dropped three of
docs/serving.md's: pipeline parallelism, speculative decoding and DeepSeek's decode figure, unnoticed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: file -> headings (start of the heading text) each must keep
REQUIRED = {
    "serving.md": ["The model", "Engine profiles", "Errors per engine", "How sure it is", "Disaggregated prefill and decode",
                   "Reproductions", "Pipeline parallelism (`--pp N`)", "Speculative decoding (`--speculative",
                   "DeepSeek's decode figure", "Limits", "Models and GPUs of 2025-26",
                   "Reading the benchmarks you already run (`--measured`)", "Sweeps", "Traffic as it is"],
    "usage.md": ["Ingest vs DuckDB's plain load", "Performance"],
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_docs_keep_their_feature_sections(name):
    headings = [m.group(1) for m in re.finditer(r"^#{2,4} (.+)$", (DOCS / name).read_text(), re.M)]
    missing = [h for h in REQUIRED[name] if not any(x.startswith(h) for x in headings)]
    assert not missing, f"{name} lost its section(s): {missing}"


def test_cross_references_to_sections_resolve():
    """Every section docs/serving.md quotes (section "X", under "X", see "X") is one of its headings."""
    text = (DOCS / "serving.md").read_text()
    headings = [m.group(1) for m in re.finditer(r"^#{2,4} (.+)$", text, re.M)]
    refs = {" ".join(r.split()) for r in re.findall(r'(?:section|under|see) "([^"]+)"', text)}  # wrapped lines
    missing = [r for r in sorted(refs) if not any(h.startswith(r) for h in headings)]
    assert not missing, missing
