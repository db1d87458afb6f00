"""Results are bit-identical to the answers recorded before the library was restructured (issue 11).

Each case in ``tests/golden/record.py`` (the README's examples and the shipped scenarios) is replayed through
the CLI and its JSON compared exactly: same keys, same floats to the last bit. A deliberate change re-records
the case (``python tests/golden/record.py NAME``) and names the change in the commit message.
"""

import json
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
    assert got == expected


def test_every_shipped_example_is_recorded():
    shipped = {p.stem for p in record.EXAMPLES.glob("*.yaml")}
    assert shipped and all(f"plan_{s}" in record.CASES for s in shipped)
    assert all((HERE / f"{n}.json").exists() for n in record.CASES)
