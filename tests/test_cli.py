"""The CLI contract: verbs, --json keys, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from conftest import assert_one_line_error


def test_train_seed_000_json(cli):
    res = cli("train", "--gpu", "a100", "--gpus", "280", "--days", "14", "--price", "2.5", "--json")
    assert res.code == 0, res.err
    data = res.json()
    for key in ("gpu_hours", "training_flops", "mfu", "compute_usd", "energy_usd", "total_usd", "assumptions"):
        assert key in data
    assert data["gpu_hours"] == 94_080 and data["compute_usd"] == 235_200
    assert data["training_flops"] is None and data["mfu"] is None
    for a in data["assumptions"]:
        assert set(a) >= {"name", "value", "source", "as_of"}


def test_train_deepseek(cli):
    data = cli("train", "--gpu", "h800", "--gpu-hours", "2788000", "--price", "2", "--json").json()
    assert data["compute_usd"] == 5_576_000


def test_train_mfu_from_params(cli):
    data = cli("train", "--gpu", "h800", "--gpu-hours", "2.664e6", "--params", "671e9", "--active-params", "37e9",
               "--tokens", "14.8e12", "--price", "2", "--precision", "fp8", "--json").json()
    assert data["mfu"] == pytest.approx(0.173, abs=0.002)


def test_train_provider_tier(cli):
    data = cli("train", "--gpu", "h100", "--gpus", "8", "--hours", "10", "--provider", "aws", "--tier", "spot", "--json").json()
    quote = [a for a in data["assumptions"] if "spot" in a["name"]][0]
    assert data["usd_per_gpu_hour"] == quote["value"] and quote["as_of"]


def test_serve_json(cli):
    data = cli("serve", "--tokens-per-second", "14800", "--gpus", "8", "--price", "2", "--utilization", "1", "--json").json()
    assert {"usd_per_hour", "usd_per_million_tokens", "assumptions"} <= set(data)
    assert data["usd_per_million_tokens"] == pytest.approx(0.30, abs=0.005)


def test_breakeven_json(cli):
    data = cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "800000", "--json").json()
    assert data["exists"] is True and data["break_even_tokens"] == pytest.approx(1e11)
    none = cli("breakeven", "--api-price", "1", "--own-cost", "2", "--fixed", "800000", "--json")
    assert none.code == 0 and none.json()["exists"] is False and none.json()["break_even_tokens"] is None


def test_payback_json(cli):
    data = cli("payback", "--fixed", "235200", "--users", "10000", "--revenue-per-user-month", "10", "--json").json()
    assert data["payback_months"] == 2.352
    never = cli("payback", "--fixed", "1", "--users", "1", "--revenue-per-user-month", "1", "--cost-per-user-month", "2", "--json")
    assert never.json()["payback_months"] is None


@pytest.mark.parametrize("kind", ["gpus", "prices", "runs", "constants"])
def test_catalog_json(cli, kind):
    data = cli("catalog", kind, "--json").json()
    assert data["count"] == len(data["rows"]) > 0
    assert all(r["source"] and r["as_of"] for r in data["rows"])


def test_catalog_human(cli):
    res = cli("catalog", "gpus")
    assert res.code == 0 and "h100-sxm" in res.out


@pytest.mark.parametrize("args,field", [
    (["train", "--gpu", "a100", "--gpus", "280", "--days", "14", "--price", "0"], "--price"),
    (["train", "--gpu", "a100", "--gpus", "0", "--days", "14", "--price", "2"], "--gpus"),
    (["train", "--gpu", "a100", "--gpus", "2", "--days", "-1", "--price", "2"], "--days"),
    (["train", "--gpu", "a10", "--gpus", "2", "--days", "1", "--price", "2"], "--gpu"),
    (["train", "--gpu", "a100", "--gpus", "2", "--days", "1", "--provider", "awss"], "--provider"),
    (["train", "--gpu", "a100", "--gpus", "2", "--days", "1", "--provider", "aws", "--tier", "hourly"], "--tier"),
    (["train", "--gpu", "a100", "--params", "7e9", "--tokens", "1e12", "--mfu", "1.2", "--price", "2"], "--mfu"),
    (["train", "--gpu", "a100", "--price", "2"], "--gpu-hours"),
    (["train", "--gpu", "a100", "--gpu-hours", "nan", "--price", "2"], "--gpu-hours"),
    (["train", "--gpu", "a100", "--gpu-hours", "inf", "--price", "2"], "--gpu-hours"),
    (["train", "--gpu", "a100", "--gpus", "x", "--days", "1", "--price", "2"], "--gpus"),
    (["train", "--gpux", "a100"], "--gpux"),
    (["serve", "--tokens-per-second", "100", "--gpus", "1", "--price", "2", "--utilization", "0"], "--utilization"),
    (["serve", "--tokens-per-second", "100", "--gpus", "1", "--price", "2", "--utilization", "1.5"], "--utilization"),
    (["serve", "--tokens-per-second", "-100", "--gpus", "1", "--price", "2"], "--tokens-per-second"),
    (["serve", "--gpus", "1", "--price", "2"], "--tokens-per-second"),
    (["breakeven", "--api-price", "-1", "--own-cost", "1", "--fixed", "1"], "--api-price"),
    (["breakeven", "--api-price", "1", "--own-cost", "1"], "--fixed"),
    (["payback", "--fixed", "10", "--users", "0", "--revenue-per-user-month", "1"], "--users"),
    (["catalog", "gpuz"], "KIND"),
])
def test_bad_input_one_line_exit_2(cli, args, field):
    assert_one_line_error(cli(*args), field)


def test_help_lists_verbs(cli):
    res = cli("--help")
    assert res.code == 0
    for verb in ("train", "serve", "breakeven", "payback", "catalog", "demo"):
        assert verb in res.out


def test_cli_module_imports_no_heavy_libraries():
    # Start-up stays light: building the CLI (all verbs registered) must not import numpy, pandas or pydantic.
    code = ("import sys, billshape.cli as c; c._register(); import typer.main; typer.main.get_command(c.app); "
            "heavy = [m for m in ('numpy', 'pandas', 'pydantic', 'scipy', 'altair', 'duckdb', 'streamlit') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported at start-up: {out}"


def test_entry_point_subprocess_json():
    proc = subprocess.run([sys.executable, "-m", "billshape", "payback", "--fixed", "235200", "--users", "10000",
                           "--revenue-per-user-month", "10", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["payback_months"] == 2.352
    bad = subprocess.run([sys.executable, "-m", "billshape", "payback", "--fixed", "-1", "--users", "1",
                          "--revenue-per-user-month", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_missing_argument_is_one_line(cli):
    assert_one_line_error(cli("plan"), "FILE")


def test_catalog_without_kind_lists_the_kinds(cli):
    res = cli("catalog")
    assert res.code == 0 and all(k in res.out for k in ("gpus", "prices", "runs", "constants"))
    data = cli("catalog", "--json").json()
    assert [k["kind"] for k in data["kinds"]] == ["gpus", "prices", "runs", "constants"]
    assert_one_line_error(cli("catalog", "gpuz"), "KIND")


@pytest.mark.parametrize("args, flag, allowed", [
    (["train", "--gpu", "a100", "--gpus", "8", "--days", "1", "--price", "2", "--precision", "fp9"], "--precision", "fp8"),
    (["train", "--gpu", "a100", "--gpus", "8", "--days", "1", "--provider", "aws", "--tier", "spott"], "--tier", "spot"),
    (["train", "--gpu", "a100", "--gpus", "8", "--days", "1", "--price", "2", "--method", "rent"], "--method", "amortized"),
    (["serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--mode", "dynamic"], "--mode", "max-load"),
    (["size", "--reference-params", "13e9", "--inference-tokens", "2e12", "--precision", "fp9"], "--precision", "int8"),
])
def test_choice_options_fail_in_billshape_format(cli, args, flag, allowed):
    res = cli(*args)
    assert_one_line_error(res, flag)
    assert res.err.startswith(f"billshape: error: {flag}: got ") and "allowed: one of" in res.err and allowed in res.err


def test_choice_options_ignore_case_and_list_values_in_help(cli):
    a = cli("train", "--gpu", "a100", "--gpus", "8", "--days", "1", "--price", "2", "--precision", "BF16", "--json").json()
    b = cli("train", "--gpu", "a100", "--gpus", "8", "--days", "1", "--price", "2", "--json").json()
    assert a == b
    assert "on-demand|reserved-1y|reserved-3y|spot" in cli("train", "--help").out


def test_choice_lists_match_the_library():
    from typing import get_args

    from billshape import catalog, serving
    from billshape.cli import _common
    from billshape.usage import api, readers

    assert get_args(_common.Tier) == catalog.TIERS
    assert get_args(_common.Precision) == catalog.PRECISIONS
    assert get_args(_common.WeightPrecision) == serving.WEIGHT_PRECISIONS
    assert get_args(_common.KvPrecision) == serving.KV_PRECISIONS
    assert set(get_args(_common.TrainPrecision)) <= set(catalog.PRECISIONS)
    assert readers.FORMATS == api.FORMATS
    import billshape.cli.cmd_usage as cu
    import inspect
    src = inspect.getsource(cu)
    assert str(list(api.FORMATS)).replace("'", '"').strip("[]") in src
    assert str(list(api.REPORT_BY)).replace("'", '"').strip("[]") in src


def test_version(cli):
    res = cli("--version")
    assert res.code == 0 and res.out.strip() == "billshape 0.1.0"
    data = cli("--version", "--json").json()
    assert data["version"] == "0.1.0" and "python" in data


def test_bare_command_prints_help(cli):
    res = cli()
    assert res.code == 0 and "Usage" in res.out


@pytest.mark.parametrize("args,field", [
    (["train", "--gpu", "a100", "--gpus", "1e308", "--days", "14", "--price", "2.5"], "--gpus"),
    (["payback", "--fixed", "1e308", "--users", "1e308", "--revenue-per-user-month", "1e308", "--json"], "--fixed"),
    (["serve", "--tokens-per-second", "1e308", "--gpus", "1", "--price", "2", "--json"], "--tokens-per-second"),
    (["breakeven", "--api-price", "1e300", "--own-cost", "1", "--fixed", "1"], "--api-price"),
])
def test_extreme_inputs_are_bounded(cli, args, field):
    res = cli(*args)
    assert_one_line_error(res, field)
    assert "Warning" not in res.err


def test_overflowing_result_is_a_one_line_error(cli, monkeypatch):
    # A safety net under the input bounds: a result that still is NaN or inf is refused, never printed.
    from billshape import inference

    monkeypatch.setattr(inference, "usd_per_million_tokens", lambda *a, **k: float("nan"))
    args = ["serve", "--tokens-per-second", "100", "--gpus", "1", "--price", "2"]
    assert_one_line_error(cli(*args, "--json"), "usd_per_million_tokens")
    res = cli(*args)
    assert res.code == 2 and "nan" not in res.out.lower()


def test_non_utf8_file_is_a_one_line_error(cli, tmp_path):
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    res = cli("route", "--ladder", str(bad), "--quality-bar", "0.8")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err


@pytest.mark.parametrize("args", [
    ["train", "--gpu", "a100", "--gpus", "280", "--days", "14", "--price", "2.5", "--json"],  # the fast path
    ["catalog", "gpus", "--json"],  # Typer's path
])
def test_a_closed_pipe_stops_quietly(args):
    """Output into a pipe closed before it is written (``billshape ... | head -0``): exit 0, nothing on stderr."""
    code = ("import sys; from billshape.cli import run\n"
            "class Closed:\n"
            "    def write(self, text): raise BrokenPipeError(32, 'Broken pipe')\n"
            "    def flush(self): pass\n"
            "    def isatty(self): return False\n"
            "sys.stdout = Closed()\n"
            f"sys.exit(run({args!r}))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (res.returncode, res.stderr) == (0, "")
