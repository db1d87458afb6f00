"""Chains: typed requests, one run per verb, errors that name fields (not flags), readers from any source,
and hostile numbers that never reach "internal error" (issue 11)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from billshape import chains
from billshape.chains import (BreakevenRequest, CapacityRequest, MarketPathRequest, PaybackRequest, RouteRequest,
                              ServeRequest, SizeRequest, TrainRequest)
from billshape.errors import BillshapeInputError
from billshape.cli._flags import CLI_FLAGS, cli_flag, cli_message, cli_payload, cli_source

ROOT = Path(__file__).resolve().parents[1]
MEASURED_JSON = ROOT / "examples" / "measured" / "vllm_llama-3.1-8b_h100.json"
MEASURED_CSV = ROOT / "examples" / "measured" / "simple.csv"
DEMAND = ROOT / "examples" / "demand_week.csv"
LADDER = ROOT / "examples" / "ladder_frugalgpt.yaml"


# ------------------------------------------------------------------------------------------ field names


def test_serve_names_the_field_not_the_flag():
    with pytest.raises(BillshapeInputError) as err:
        chains.serve(model="llama-3.1-70b", gpu="h100", gpus=-1)
    assert err.value.field == "gpus"
    assert "--" not in err.value.message and err.value.message.startswith("gpus: got -1")


@pytest.mark.parametrize("call,field", [
    (lambda: chains.train(gpu="a100", gpus=-1, days=14, price=2), "gpus"),
    (lambda: chains.train(gpu="a100", gpus=2, days=1, hours=3, price=2), "days/hours"),
    (lambda: chains.breakeven(api_usd_per_million_tokens=0, own_usd_per_million_tokens=2, fixed_usd=1), "api_usd_per_million_tokens"),
    (lambda: chains.breakeven(api_usd_per_million_tokens=10, own_usd_per_million_tokens=2), "fixed_usd"),
    (lambda: chains.breakeven(api_usd_per_million_tokens=10, own_usd_per_million_tokens=2, fixed_usd=1, months=12), "volume_tokens_per_month"),
    (lambda: chains.payback(fixed_usd=1, users=0, revenue_per_user_month_usd=5), "users"),
    (lambda: chains.size(), "inference_tokens"),
    (lambda: chains.capacity(demand=DEMAND, reserved_usd_per_gpu_hour=0, on_demand_usd_per_gpu_hour=3), "reserved_usd_per_gpu_hour"),
    (lambda: chains.route(ladder=LADDER, quality_bar=2), "quality_bar"),
    (lambda: chains.market_path(start_price=10, months=0), "months"),
    (lambda: chains.market_path(start_price=10, steps=["x"]), "steps"),
    (lambda: chains.serve(tokens_per_second=100), "gpus"),
    (lambda: chains.serve(model="llama-3.1-70b"), "gpu"),
    (lambda: chains.serve(model="llama-3.1-70b", gpu="h100", requests_per_second=5), "tpot_limit"),
    (lambda: chains.serve(measured=MEASURED_JSON, batch="4"), "batch/mode"),
    (lambda: chains.serve(model="llama-3.1-70b", gpu="h100", tokens_per_second=5), "tokens_per_second"),
])
def test_library_errors_name_fields(call, field):
    with pytest.raises(BillshapeInputError) as err:
        call()
    assert err.value.field == field
    assert "--" not in err.value.message, err.value.message


def test_other_fields_in_the_message_are_backticked_and_translated_by_the_cli():
    with pytest.raises(BillshapeInputError) as err:
        chains.train(gpu="a100", gpu_hours=10, price=2, provider="aws")
    assert err.value.field == "price/provider" and "`price`" in err.value.allowed
    assert cli_message(err.value).startswith("--price/--provider: ") and "one of --price or --provider" in cli_message(err.value)


def test_provenance_names_fields_and_the_cli_prints_flags():
    res = chains.breakeven(api_usd_per_million_tokens=10, own_usd_per_million_tokens=2, fixed_usd=8e5)
    sources = [a.source for a in res.assumptions]
    assert "user input (api_usd_per_million_tokens)" in sources and "user input (fixed_usd)" in sources
    shown = [a["source"] for a in cli_payload(res.to_dict())["assumptions"]]
    assert "user input (--api-price)" in shown and "user input (--fixed)" in shown


def test_cli_flag_table():
    assert cli_flag("gpus") == "--gpus"
    assert cli_flag("tokens_per_second") == "--tokens-per-second"
    assert cli_flag("batch/mode") == "--batch/--mode"
    assert cli_flag("measured output_throughput") == "--measured output_throughput"
    assert cli_flag("api_usd_per_million_tokens") == "--api-price"
    assert cli_flag("peak_flops_per_second") == "--gpu"
    for not_a_field in ("product.users", "routes[1].gpus", "plan.yaml", "a/b.yaml", "--gpus"):
        assert cli_flag(not_a_field) == not_a_field
    assert all(flag.startswith("--") for flag in CLI_FLAGS.values())
    assert cli_source("user input (tp)") == "user input (--tp)"
    assert cli_source("billshape default (engine duckdb)") == "billshape default (--engine duckdb)"
    assert cli_source("computed: one replica over all `gpus` (`tp` not given)") == \
        "computed: one replica over all --gpus (--tp not given)"
    assert cli_source("user input (high_volume_self_host.yaml)") == "user input (high_volume_self_host.yaml)"
    assert cli_source("user input (budget)", fields=False) == "user input (budget)"  # a plan's file, not a field
    assert cli_source("computed: from `gpus`", fields=False) == "computed: from --gpus"


def test_plan_provenance_names_its_file_not_a_flag(tmp_path):
    """A scenario file whose name looks like a field (``budget``, no extension) keeps its name in the CLI's
    provenance, in JSON and in the text table: the plan verb never reads ``user input (NAME)`` as a field."""
    from billshape.plan import examples_dir

    src = Path(examples_dir()) / "seed000_image_startup.yaml"
    (tmp_path / "budget").write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    run = lambda *a: subprocess.run([sys.executable, "-m", "billshape", "plan", "budget", "--samples", "50", *a],
                                    cwd=tmp_path, capture_output=True, text=True)
    out = run("--json")
    assert out.returncode == 0, out.stderr
    sources = {a["source"] for a in json.loads(out.stdout)["assumptions"]}
    assert "user input (budget)" in sources and not any("--budget" in s for s in sources)
    text = run()
    assert text.returncode == 0 and "user input (budget)" in text.stdout and "--budget" not in text.stdout


def test_no_flag_in_library_errors():
    """Below the shells no BillshapeInputError names a --flag (scenario.py's flag-keyed maps aside)."""
    import re

    src = ROOT / "src" / "billshape"
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src)
        if rel.parts[0] in ("cli", "app", "report") or rel.name == "scenario.py":  # report/: not this change
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r'(BillshapeInputError|user|unknown_name|v\.[a-z_]+)\(\s*f?"--', line):
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert not offenders, offenders


def test_cli_error_still_prints_the_flag(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "-1")
    assert res.code == 2 and res.err == "billshape: error: --gpus: got -1; allowed: in (0, 1e+12]\n"


# ------------------------------------------------------------------------------------------ requests


def test_request_type_errors_are_one_input_error():
    with pytest.raises(BillshapeInputError) as err:
        ServeRequest(gpus="eight")
    assert err.value.field == "gpus" and err.value.allowed == "a number"
    with pytest.raises(BillshapeInputError) as err:
        TrainRequest(gpu_count=8)
    assert err.value.field == "gpu_count" and "unknown field" in err.value.hint
    with pytest.raises(BillshapeInputError) as err:
        PaybackRequest(users=10 ** 5000)
    assert err.value.field == "users" and "digits" in err.value.message


def test_requests_hold_python_field_names():
    assert set(BreakevenRequest.model_fields) >= {"api_usd_per_million_tokens", "own_usd_per_million_tokens",
                                                  "fixed_usd", "volume_tokens_per_month", "months"}
    assert set(CapacityRequest.model_fields) >= {"demand", "reserved_usd_per_gpu_hour", "on_demand_usd_per_gpu_hour"}
    assert not any("-" in name for cls in (TrainRequest, ServeRequest, SizeRequest, RouteRequest, MarketPathRequest)
                   for name in cls.model_fields)


def test_run_dispatches_on_the_request():
    assert type(chains.run(PaybackRequest(fixed_usd=1000, users=10, revenue_per_user_month_usd=5))).__name__ == "Payback"
    with pytest.raises(TypeError):
        chains.run(object())


@pytest.mark.parametrize("fields,mode,result", [
    (dict(tokens_per_second=14800, gpus=8, price=2, utilization=1), "throughput", "ServingCost"),
    (dict(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", price=2.5), "model", "ServeEstimate"),
    # a ServeEstimate subclass that also says which tool, engine and version measured it
    (dict(measured=MEASURED_JSON, gpu="h100", gpus=1, price=2), "measured", "MeasuredServeEstimate"),
    (dict(model="llama-3.1-70b", gpu="h100", precision="fp8", requests_per_second=10, tpot_limit=0.05, price=2.5),
     "capacity", "Capacity"),
])
def test_serve_mode_choice(fields, mode, result):
    from billshape.chains.serving import mode as serve_mode

    req = ServeRequest(**fields)
    assert serve_mode(req) == mode
    assert type(chains.run(req)).__name__ == result


def test_cli_json_is_the_chain_result(cli):
    data = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "2", "--precision", "fp8",
               "--price", "2.5", "--json").json()
    res = chains.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", price=2.5)
    assert data == cli_payload(res.to_dict())
    data = cli("market", "path", "--start-price", "10", "--months", "24", "--step", "13:3", "--json").json()
    assert data == cli_payload(chains.market_path(start_price=10, months=24, steps=["13:3"]).to_dict())
    assert list(data) == ["months", "annual_factor", "steps", "prices", "end_to_start_ratio", "assumptions"]


def test_every_verb_runs():
    assert chains.train(gpu="h100", gpus=8, days=1, price=2).total_usd == pytest.approx(8 * 24 * 2)
    assert chains.breakeven(api_usd_per_million_tokens=10, own_usd_per_million_tokens=2, fixed_usd=8e5,
                            volume_tokens_per_month=1e10, months=24).months == 24
    assert chains.size(inference_tokens=1e13, reference_params=7e9).params > 0
    assert chains.capacity(demand="example-week", reserved_usd_per_gpu_hour=2, on_demand_usd_per_gpu_hour=4).hours > 0
    assert chains.route(ladder="frugalgpt-headlines", quality_bar=0.5).largest
    assert chains.market_backtest(series="openai-flagship").test_rows >= 1


def test_chains_import_is_light_and_cli_help_skips_it():
    # (present.format, the stdlib-only formatter, may load with the verbs' modules; the label table is for errors)
    code = ("import sys; import billshape.chains; "
            "print(sorted(m for m in ('pandas', 'scipy', 'altair', 'billshape.serving', 'billshape.decide') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = ("import sys; from billshape.cli import run; run(['--help']); "
            "print('billshape.chains' in sys.modules, 'billshape.cli._flags' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


# ------------------------------------------------------------------------------------------ readers


def _forms(path: Path):
    raw = path.read_bytes()
    return [path, str(path), raw, raw.decode("utf-8"), io.BytesIO(raw), io.StringIO(raw.decode("utf-8"))]


@pytest.mark.parametrize("i", range(6))
def test_read_demand_from_any_source(i):
    from billshape.decide import read_demand

    want = read_demand(DEMAND)
    got = read_demand(_forms(DEMAND)[i])
    assert all((a == b).all() for a, b in zip(want, got))


@pytest.mark.parametrize("i", range(6))
def test_read_ladder_from_any_source(i):
    from billshape.decide import read_ladder

    want, got = read_ladder(LADDER), read_ladder(_forms(LADDER)[i])
    assert got["models"] == want["models"]


@pytest.mark.parametrize("path", [MEASURED_JSON, MEASURED_CSV])
@pytest.mark.parametrize("i", range(6))
def test_read_measured_from_any_source(path, i):
    from billshape.serving import read_measured

    want = read_measured(path)
    got = read_measured(_forms(path)[i])
    assert {k: v for k, v in got.items() if k != "source"} == {k: v for k, v in want.items() if k != "source"}


def test_read_input_text_and_the_capacity_chain_take_bytes():
    from billshape.decide import SHIPPED_DEMANDS, read_input_text

    text, name = read_input_text(DEMAND.read_bytes(), "demand")
    assert name == "<bytes>" and text.startswith(DEMAND.read_text()[:20])
    text, name = read_input_text(b"\xef\xbb\xbfhour,gpus\n0,1\n", "demand")
    assert text == "hour,gpus\n0,1\n"  # the byte-order mark is dropped
    assert read_input_text("example-week", "demand", SHIPPED_DEMANDS)[1].startswith("example-week (shipped")
    with open(DEMAND, "rb") as fh:
        plan = chains.capacity(demand=fh, reserved_usd_per_gpu_hour=2, on_demand_usd_per_gpu_hour=4)
    by_path = chains.capacity(demand=DEMAND, reserved_usd_per_gpu_hour=2, on_demand_usd_per_gpu_hour=4)
    assert plan.total_usd == by_path.total_usd
    res = chains.serve(measured=MEASURED_JSON.read_bytes(), gpu="h100", gpus=1, price=2)
    assert res.output_tokens_per_second == chains.serve(measured=MEASURED_JSON, gpu="h100", gpus=1, price=2).output_tokens_per_second


def test_readers_cap_the_size_and_name_the_field():
    from billshape.io import read_source

    with pytest.raises(BillshapeInputError) as err:
        read_source(b"x" * 101, "demand", max_bytes=100)
    assert err.value.field == "demand" and "MB" in err.value.allowed
    with pytest.raises(BillshapeInputError) as err:
        read_source(io.BytesIO(b"x" * 101), "ladder", max_bytes=100)
    assert err.value.field == "ladder"
    with pytest.raises(BillshapeInputError) as err:
        read_source("a\n" * 51, "measured", max_bytes=100)
    assert err.value.field == "measured"
    with pytest.raises(BillshapeInputError) as err:
        read_source(b"\xff\xfe", "demand")
    assert err.value.field == "demand" and "UTF-8" in err.value.allowed
    with pytest.raises(BillshapeInputError) as err:
        read_source(12, "demand")
    assert err.value.field == "demand"


# ------------------------------------------------------------------------------------------ hostile input

BIG400, BIG5000 = "9" * 400, "9" * 5000


@pytest.mark.parametrize("args,flag", [
    (["market", "path", "--start-price", "10", "--months", BIG400], "--months"),
    (["market", "path", "--start-price", "10", "--months", BIG5000], "--months"),
    (["market", "path", "--start-price", BIG5000], "--start-price"),
    (["market", "path", "--start-price", "10", "--step", BIG5000 + ":2"], "--step"),
    (["train", "--gpu", "h100", "--gpus", BIG5000, "--days", "3", "--price", "2"], "--gpus"),
    (["train", "--gpu", "h100", "--gpus", "8", "--days", BIG5000, "--price", "2"], "--days"),
    (["serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", BIG5000], "--gpus"),
    (["serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "8", "--batch", BIG5000], "--batch"),
    (["serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--requests-per-second", "1", "--tpot-limit", "0.05",
      "--tp", BIG5000], "--tp"),
    (["breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "1", "--volume-per-month", "1e9",
      "--months", BIG400], "--months"),
    (["breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "1", "--volume-per-month", "1e9",
      "--months", BIG5000], "--months"),
    (["payback", "--fixed", BIG5000, "--users", "10", "--revenue-per-user-month", "5"], "--fixed"),
    (["size", "--inference-tokens", BIG5000], "--inference-tokens"),
    (["capacity", "--demand", "example-week", "--reserved-price", BIG5000, "--on-demand-price", "3"], "--reserved-price"),
    (["capacity", "--demand", "x" * 5000, "--reserved-price", "1", "--on-demand-price", "3"], "--demand"),
    (["route", "--ladder", "frugalgpt-headlines", "--quality-bar", BIG5000], "--quality-bar"),
])
def test_hostile_numbers_exit_2_naming_the_flag(cli, args, flag):
    res = cli(*args, "--json")
    lines = res.err.splitlines()
    assert res.code == 2 and len(lines) == 1 and flag in lines[0], (res.code, res.err[:300])
    assert len(lines[0]) < 400  # the value is summarised, not echoed 5,000 characters long
    assert res.out == ""


def test_json_output_is_valid(cli):
    data = cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "800000", "--json").out
    assert json.loads(data)["assumptions"][0]["source"] == "user input (--api-price)"


def test_route_takes_a_ladder_already_read():
    """The app reads an upload once (for its quality metric) and routes over the ladder the reader returned."""
    from billshape.decide import read_ladder

    ladder = read_ladder("frugalgpt-headlines")
    by_dict = chains.run(RouteRequest(ladder=ladder, quality_bar=0.845, cascade=True, cascade_only=False))
    by_name = chains.run(RouteRequest(ladder="frugalgpt-headlines", quality_bar=0.845, cascade=True,
                                      cascade_only=False))
    assert by_dict.to_dict() == by_name.to_dict() and by_dict.chosen == "gemini-1.5-flash"
