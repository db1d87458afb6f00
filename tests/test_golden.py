"""Results are bit-identical to the answers recorded before the library was restructured (issue 11).

Each case in ``tests/golden/record.py`` (the README's examples and the shipped scenarios) is replayed through
the CLI and its JSON compared: same keys, same strings, same integers, and floats equal to 1e-12 relative (a
few units in the last place: another CPU's vectorised math library rounds some Monte Carlo sums differently,
which a bit-for-bit comparison would call a change; any real change to a result is far larger). A deliberate
change re-records the case (``python tests/golden/record.py NAME``) and names the change in the commit message.
"""

import json
import math
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(HERE))
import record  # noqa: E402


@pytest.mark.parametrize("name", sorted(record.CASES))
def test_answer_matches_the_recording(name):
    expected = json.loads((HERE / f"{name}.json").read_text())
    got = json.loads(json.dumps(record.answer(record.CASES[name]), sort_keys=True))
    assert _differences(got, expected) == []


def _differences(got, want, path="$") -> list[str]:
    """Where ``got`` differs from ``want``: structure, keys, strings, booleans and integers exactly; floats to
    1e-12 relative (1e-14 absolute near zero)."""
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return [] if math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-14) else [f"{path}: {got!r} != {want!r}"]
    if type(got) is not type(want):
        return [f"{path}: {type(got).__name__} {got!r} != {type(want).__name__} {want!r}"]
    if isinstance(want, dict):
        if set(got) != set(want):
            return [f"{path}: keys {sorted(set(got) ^ set(want))} differ"]
        return [d for k in want for d in _differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list):
        if len(got) != len(want):
            return [f"{path}: {len(got)} items != {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in _differences(g, w, f"{path}[{i}]")]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def test_the_comparison_sees_a_change():
    """The tolerance admits last-place rounding and nothing a result change would make."""
    want = {"a": [1.0, {"b": 0.6246048149091692}], "s": "x", "n": 3}
    assert _differences({"a": [1.0, {"b": 0.6246048149091693}], "s": "x", "n": 3}, want) == []
    assert _differences({"a": [1.0, {"b": 0.624604814908}], "s": "x", "n": 3}, want) != []
    assert _differences({"a": [1.0, {"b": 0.6246048149091692}], "s": "y", "n": 3}, want) != []
    assert _differences({"a": [1.0, {"b": 0.6246048149091692}], "s": "x", "n": 4}, want) != []
    assert _differences({"a": [1.0], "s": "x", "n": 3}, want) != []
    assert _differences({"a": [1.0, {"b": 0.6246048149091692}], "s": "x"}, want) != []


def test_every_shipped_example_is_recorded():
    shipped = {p.stem for p in record.EXAMPLES.glob("*.yaml")}
    assert shipped and all(f"plan_{s}" in record.CASES for s in shipped)
    assert all((HERE / f"{n}.json").exists() for n in record.CASES)
