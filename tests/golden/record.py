"""Record the CLI's JSON answers for the shipped examples and the README examples (the refactor's contract).

Run ``python tests/golden/record.py`` only when a change to a result is deliberate, and say so in the commit.
``tests/test_golden.py`` replays every case and compares the JSON (floats to 1e-12 relative).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

# "today" for the staleness warnings of verbs priced at today (billshape.staleness.today): the day of recording,
# so that a recording holds on any later day (the plans are priced at their own date). Set around each answer
# only (:func:`answer`): set at import, it would fix "today" for every test that runs after in the same process.
RECORDED_ON = "2026-12-03"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXAMPLES = ROOT / "src" / "billshape" / "examples"

CASES: dict[str, list[str]] = {
    "train_a100": "train --gpu a100 --gpus 280 --days 14 --price 2.5 --json".split(),
    "train_deepseek_hours": "train --gpu h800 --gpu-hours 2788000 --price 2 --json".split(),
    "train_deepseek_moe": ("train --gpu h800 --gpu-hours 2664000 --params 671e9 --active-params 37e9 "
                           "--tokens 14.8e12 --price 2 --json").split(),
    "train_run_llama405b": "train --run llama-3.1-405b --provider lambda --json".split(),
    "train_amortized": "train --gpu h100 --gpus 1024 --days 30 --method amortized --json".split(),
    "serve_given": "serve --tokens-per-second 14800 --gpus 8 --price 2 --utilization 1 --json".split(),
    "serve_roofline": ("serve --model llama-3.1-70b --gpu h100 --gpus 2 --precision fp8 --input-tokens 1000 "
                       "--output-tokens 1000 --batch max --price 2.5 --json").split(),
    "serve_measured": f"serve --measured {ROOT}/examples/measured/simple.csv --price 2.5 --json".split(),
    "serve_capacity": ("serve --model llama-3.1-70b --gpu h100 --precision fp8 --requests-per-second 10 "
                       "--input-tokens 1000 --output-tokens 500 --tpot-limit 0.05 --price 2.5 --json").split(),
    "breakeven_build": "breakeven --api-price 10 --own-cost 2 --fixed 800000 --json".split(),
    "breakeven_never": "breakeven --api-price 1 --own-cost 2 --fixed 800000 --json".split(),
    "breakeven_horizon": ("breakeven --api-price 10 --own-cost 2 --fixed 500000 --volume-per-month 2e10 "
                          "--months 24 --api-price-annual-factor 0.1 --discount-rate-annual 0.08 --json").split(),
    "payback": "payback --fixed 235200 --users 10000 --revenue-per-user-month 10 --json".split(),
    "size": "size --reference-params 13e9 --inference-tokens 2e12 --json".split(),
    "capacity": "capacity --demand example-week --reserved-price 1.9 --on-demand-price 3.9 --json".split(),
    "route": "route --ladder frugalgpt-headlines --quality-bar 0.845 --cascade --json".split(),
    "market_backtest": "market backtest --series openai-flagship --json".split(),
    "market_path": "market path --start-price 10 --months 24 --trend a16z-llmflation --step 13:3 --json".split(),
    "catalog_prices": "catalog prices --gpu h100 --tier spot --json".split(),
    "plan_readme": f"plan {EXAMPLES}/high_volume_self_host.yaml --samples 20000 --seed 0 --json".split(),
}
for _path in sorted(EXAMPLES.glob("*.yaml")):
    CASES[f"plan_{_path.stem}"] = f"plan {_path} --samples 4000 --seed 1 --json".split()


def answer(argv: list[str]) -> dict:
    """The CLI's JSON answer for ``argv`` (run in-process)."""
    from billshape.cli import run

    out = io.StringIO()
    before = os.environ.get("BILLSHAPE_TODAY")
    os.environ["BILLSHAPE_TODAY"] = before or RECORDED_ON
    try:
        with contextlib.redirect_stdout(out):
            code = run(argv)
    finally:
        if before is None:
            del os.environ["BILLSHAPE_TODAY"]
    if code != 0:
        raise RuntimeError(f"billshape {' '.join(argv)} exited {code}")
    return _portable(json.loads(out.getvalue()))


def _portable(obj):
    """Paths to the repository written relative, so a recording holds across checkouts."""
    if isinstance(obj, dict):
        return {k: _portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_portable(v) for v in obj]
    if isinstance(obj, str) and str(ROOT) in obj:
        return obj.replace(str(ROOT), "<repo>")
    return obj


def main() -> int:
    names = sys.argv[1:] or sorted(CASES)
    for name in names:
        (HERE / f"{name}.json").write_text(json.dumps(answer(CASES[name]), indent=1, sort_keys=True) + "\n")
        print("recorded", name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
