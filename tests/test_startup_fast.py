"""``billshape train ... --json`` starts fast (issue "One request, one run, one result", item 6): the fast path
(billshape.cli._fast) prints byte for byte what Typer's path prints, its option table is train's own, anything it
does not understand goes to Typer, and it imports neither Typer, pydantic nor numpy. Also: results are stdlib
Records that convert numbers as pydantic did, and the scalar equations give numpy's floats to the last bit."""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
import typing

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import training
from billshape.cli import _fast, run
from billshape.results import Assumption, Result


def typer_path(args: list[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``billshape ARGS`` through Typer (the fast path off)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args), fast=False)
    return code, out.getvalue(), err.getvalue()


# --- the option table is the Typer command's -------------------------------------------------------------------

def train_command():
    from billshape.cli import _app

    _app._register("train")
    return _app.command().commands["train"]


def test_option_table_equals_the_typer_train_command():
    from_typer = {}
    for p in train_command().params:
        assert len(p.opts) == 1 and not p.secondary_opts and not p.multiple and p.nargs == 1, p.name
        ann = p.type_descriptor.annotation
        if typing.get_origin(ann) is typing.Literal:
            assert p.type_descriptor.parameter_info.case_sensitive is False, p.name
            kind, choices = "choice", tuple(typing.get_args(ann))
        elif p.is_flag:
            assert ann is bool and p.is_bool_flag
            kind, choices = "flag", None
        else:
            kind, choices = {float: "float", str: "str"}[ann], None
        from_typer[p.opts[0]] = (p.name, kind, p.default, choices)
    assert from_typer == _fast.TRAIN_OPTIONS
    assert list(from_typer) == list(_fast.TRAIN_OPTIONS)  # same order too (help and table read alike)


def test_fields_are_the_train_request_fields_after_its_normalisation():
    from billshape.chains import TrainRequest

    for args in ARGV:
        fields = _fast.train_request_fields(_fast.parse_train(args.split()))
        assert set(fields) == set(TrainRequest.model_fields)
        dumped = TrainRequest(**fields).model_dump()
        assert dumped == fields and all(type(dumped[k]) is type(v) for k, v in fields.items()), args


# --- byte-identical output -------------------------------------------------------------------------------------

ARGV = [
    "train --gpu a100 --gpus 280 --days 14 --price 2.5 --json",
    "train --json --gpu h100 --gpus 1024 --hours 720 --price 2",
    "train --gpu-hours 1e6 --price 3 --json",
    "train --gpu H100 --gpus=16 --days=3 --price=1.5 --experiments-multiplier 3 --staff-usd 1e6 --data-usd 5e5 --json",
    "train --gpu h100 --params 7e9 --tokens 2e12 --mfu 0.4 --price 2 --json",
    "train --gpu h100 --params 671e9 --active-params 37e9 --tokens 14.8e12 --mfu .35 --precision FP8 --price 2 --json",
    "train --gpu h100 --flops 1e24 --mfu 0.35 --precision fp8 --price 2 --json",
    "train --gpu h800 --gpu-hours 2.664e6 --params 671e9 --active-params 37e9 --tokens 14.8e12 --price 2 --json",
    "train --gpu a100 --gpus 8 --days 1 --provider AWS --json",
    "train --gpu h100 --gpus 8 --days 1 --provider aws --tier Reserved-1y --json",
    "train --gpu a100-40gb-sxm --gpus 8 --days 1 --provider aws --tier SPOT --json",
    "train --gpu a100 --gpus 64 --days 10 --method amortized --json",
    "train --gpu h100 --gpus 64 --days 10 --method Amortized --pue 1.3 --usd-per-kwh 0.1 --hardware-usd 30000 --json",
    "train --run deepseek-v3 --price 2 --json",
    "train --run LLAMA-2-70B --provider aws --json",
    "train --run llama-3-8b --gpu-hours 1.3e6 --method amortized --experiments-multiplier 1 --json",
]


@pytest.mark.parametrize("argv", ARGV)
def test_fast_path_prints_what_typer_prints(argv):
    args = argv.split()
    fast = _fast.train_json(args)
    code, out, err = typer_path(args)
    assert code == 0 and err == "", err
    assert fast is not None, "the fast path should answer this one"
    assert fast == out
    json.loads(fast)


def test_run_uses_the_fast_path_and_prints_the_same(capsys):
    args = ARGV[0].split()
    assert run(args) == 0
    assert capsys.readouterr().out == typer_path(args)[1]


numbers = st.floats(min_value=1e-3, max_value=1e7, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(gpus=numbers, days=numbers, price=numbers, mult=st.one_of(st.none(), st.floats(1, 50)),
       spelled=st.sampled_from(["{!r}", "{:.6e}", "{:g}"]))
def test_fast_path_equals_typer_over_numbers(gpus, days, price, mult, spelled):
    args = ["train", "--gpu", "h100", "--gpus", spelled.format(gpus), "--days", spelled.format(days),
            "--price", spelled.format(price), "--json"]
    if mult is not None:
        args += ["--experiments-multiplier", repr(mult)]
    fast = _fast.train_json(args)
    code, out, err = typer_path(args)
    if code == 0:
        assert fast == out
    else:  # out of range (days > 4e4, price > 1e6, ...): Typer reports it, the fast path stayed silent
        assert fast is None and code == 2 and err.count("\n") == 1


@settings(max_examples=30, deadline=None)
@given(params=st.floats(1e6, 1e13), tokens=st.floats(1e9, 1e14), mfu=st.floats(0.01, 1.0),
       method=st.sampled_from(["rental", "amortized", "AMORTIZED"]))
def test_fast_path_equals_typer_from_compute(params, tokens, mfu, method):
    args = ["train", "--gpu", "a100", "--params", repr(params), "--tokens", repr(tokens), "--mfu", repr(mfu),
            "--method", method, "--json"]
    if method == "rental":
        args += ["--price", "2.25"]
    fast = _fast.train_json(args)
    code, out, _err = typer_path(args)
    assert (fast == out) if code == 0 else fast is None


# --- what the fast path leaves to Typer ------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    "train --gpu a100 --gpus 280 --days 14 --price 2.5",            # no --json: the table
    "train --gpu a100 --gpus 280 --days 14 --price 2.5 --json --help",
    "train -h --json",
    "train --gpu a100 --gpus 280 --dayz 14 --price 2.5 --json",     # unknown flag
    "train --gpu a100 --gpus eight --days 14 --price 2.5 --json",   # bad float
    "train --gpu a100 --gpus inf --days 14 --price 2.5 --json",     # not a plain decimal
    "train --gpu a100 --gpus 1_000 --days 14 --price 2.5 --json",
    "train --gpu a100 --gpus 8 --days 14 --price 2.5 --tier spott --json",  # not a choice
    "train --gpu a100 --gpus 8 --gpus 9 --days 14 --price 2.5 --json",      # repeated
    "train --gpu a100 --gpus 8 --days 14 --price -2.5 --json",      # a value that looks like an option
    "train --gpu a100 --gpus 8 --days 14 --price 2.5 --json=1",
    "train extra --gpu a100 --gpus 8 --days 14 --price 2.5 --json",  # positional
    "train --gpu a100 --gpus 8 --days 14 --price --json",           # missing value
    "serve --tokens-per-second 100 --gpus 1 --price 2 --json",     # another verb
])
def test_not_understood_goes_to_typer(argv):
    assert _fast.train_json(argv.split()) is None


@pytest.mark.parametrize("argv, flag", [
    ("train --gpu a100 --gpus 0 --days 14 --price 2.5 --json", "--gpus"),             # BillshapeInputError
    ("train --gpu a101 --gpus 8 --days 14 --price 2.5 --json", "--gpu"),
    ("train --gpu a100 --gpus 8 --days 14 --price 2.5 --pue 1.2 --json", "--pue"),
    ("train --gpu a100 --gpus 8 --days 14 --json", "--price"),
    ("train --gpu a100 --gpus 8 --days 14 --price 2.5 --tier spott --json", "--tier"),
    ("train --gpu a100 --gpus eight --days 14 --price 2.5 --json", "--gpus"),
    ("train --gpu a100 --gpus 8 --dayz 14 --price 2.5 --json", "--dayz"),
])
def test_errors_read_as_typer_reports_them(argv, flag, capsys):
    args = argv.split()
    assert _fast.train_json(args) is None
    code = run(args)
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == typer_path(args)
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1 and flag in captured.err


# --- the fast path imports no Typer, pydantic or numpy ---------------------------------------------------------

def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "billshape", *args],
                          capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc, names


def test_train_json_imports_no_typer_pydantic_or_numpy():
    proc, names = imported_modules(*ARGV[0].split())
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["total_usd"] == 235200.0
    assert "billshape.estimates" in names  # the measurement sees billshape's own imports
    heavy = sorted(n for n in names if n.split(".")[0] in ("typer", "click", "pydantic", "pydantic_core", "numpy", "rich"))
    assert heavy == []


def test_help_and_errors_still_go_through_typer():
    proc, names = imported_modules("train", "--help")
    assert proc.returncode == 0 and "--gpu-hours" in proc.stdout and "typer" in names
    bad = subprocess.run([sys.executable, "-m", "billshape", "train", "--gpu", "a100", "--gpus", "0", "--days", "1",
                          "--price", "2", "--json"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1 and "--gpus" in bad.stderr


def test_cli_app_is_still_importable():
    import typer

    from billshape.cli import app

    assert isinstance(app, typer.Typer)


# --- scalar equations: numpy's floats to the last bit ----------------------------------------------------------

def test_ln10_is_numpys():
    assert math.log(10.0).hex() == float(np.log(10.0)).hex()


pos = st.floats(1e-6, 1e12)
frac = st.floats(1e-6, 1.0)


def same_bits(scalar, array):
    assert type(scalar) is float
    assert scalar.hex() == float(array).hex()


@settings(max_examples=100, deadline=None)
@given(a=pos, b=pos, c=pos, u=frac, f=st.floats(0.0, 0.9), m=st.floats(1.0, 10.0))
def test_scalar_equations_match_numpy_bit_for_bit(a, b, c, u, f, m):
    n = np.float64  # a numpy scalar takes the numpy path, as before
    same_bits(training.training_flops(a, b), training.training_flops(n(a), n(b)))
    same_bits(training.gpu_hours_from_flops(a, b, u), training.gpu_hours_from_flops(n(a), n(b), n(u)))
    same_bits(training.gpu_hours_from_cluster(a, b), training.gpu_hours_from_cluster(n(a), n(b)))
    same_bits(training.implied_mfu(a, b, c), training.implied_mfu(n(a), n(b), n(c)))
    same_bits(training.rental_cost_usd(a, b), training.rental_cost_usd(n(a), n(b)))
    same_bits(training.amortized_usd_per_chip_hour(a, u, b, m, f),
              training.amortized_usd_per_chip_hour(n(a), n(u), n(b), n(m), n(f)))
    same_bits(training.energy_kwh(a, b, m, u, m), training.energy_kwh(n(a), n(b), n(m), n(u), n(m)))
    same_bits(training.energy_cost_usd(a, b), training.energy_cost_usd(n(a), n(b)))
    dev, dev_np = training.development_cost_usd(a, m, b, c), training.development_cost_usd(n(a), n(m), n(b), n(c))
    for k in dev:
        same_bits(dev[k], dev_np[k])


def test_arrays_still_give_arrays():
    out = training.gpu_hours_from_cluster(np.array([8.0, 16.0]), 24)
    assert isinstance(out, np.ndarray) and out.tolist() == [192.0, 384.0]


# --- Records convert numbers as pydantic did -------------------------------------------------------------------

TYPES = [float, int, bool, str, float | None, int | None, int | float, list[float], list[str], tuple[str, ...],
         dict[str, float], dict[str, float | None], list[dict[str, int | float]], dict[str, dict[str, float | None]]]
VALUES = [True, False, 0, 3, -7, 3.0, 2.5, "3", "x", None, np.float64(1.5), np.float64(4.0), np.int64(3),
          np.bool_(True), np.array(2.0), (1, 2), [1, 2.5], ["a"], ("a", "b"), {"a": 1}, {"a": None, "b": 2},
          [{"month": 1, "x": 2.5}], {"p": {"q": 1, "r": None}}]


@pytest.mark.parametrize("tp", TYPES, ids=str)
def test_record_converts_like_pydantic(tp):
    from pydantic import TypeAdapter, ValidationError

    from billshape.results import _coercer

    coerce = _coercer(tp) or (lambda v: v)
    adapter = TypeAdapter(tp)
    for value in VALUES:
        try:
            want = adapter.validate_python(value)
        except ValidationError:
            continue  # pydantic would refuse it; records are built from checked values
        got = coerce(value)
        assert repr(got) == repr(want) and type(got) is type(want), (tp, value, got, want)


def test_record_api():
    import dataclasses

    from pydantic import PrivateAttr

    from billshape.results import Assumption, Record, Result

    class R(Result):
        x: float
        tags: list[str] = []
        _cache: list = PrivateAttr(default_factory=list)
        _n: int = 0

    assert type(R) is type and type(Record) is type  # plain classes: dataclasses, no metaclass
    assert dataclasses.is_dataclass(R) and dataclasses.is_dataclass(Assumption)
    a = Assumption(name="n", value=1, source="s")
    assert a == Assumption(name="n", value=1, source="s") and hash(a) == hash(Assumption(name="n", value=1, source="s"))
    assert a != Assumption(name="n", value=2, source="s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.name = "m"
    r = R(x=3, assumptions=[a])
    assert r.x == 3.0 and type(r.x) is float and r.tags == [] and r._cache == [] and r._n == 0
    assert R(x=1).tags is not R(x=1).tags and R(x=1)._cache is not R(x=1)._cache  # mutable defaults per instance
    assert list(R.model_fields) == ["assumptions", "warnings", "snapshot", "x", "tags"]  # private attributes are not fields
    assert repr(R(x=1)).endswith("R(assumptions=[], warnings=[], snapshot=None, x=1.0, tags=[])")
    assert r.model_dump() == {"assumptions": [{"name": "n", "value": 1, "unit": None, "source": "s", "as_of": None}],
                              "warnings": [], "snapshot": None, "x": 3.0, "tags": []}
    assert dict(r) == {"assumptions": [a], "warnings": [], "snapshot": None, "x": 3.0, "tags": []}
    assert "warnings" not in r.to_dict() and "snapshot" not in r.to_dict()  # listed only when set
    r._cache.append("kept")
    c = r.model_copy(update={"tags": ["t"]})
    assert c.tags == ["t"] and r.tags == [] and c.x == 3.0 and c._cache == ["kept"]
    assert type(r.model_copy(update={"x": 2}).x) is int  # an update is not converted (as in pydantic)
    deep = r.model_copy(deep=True)
    assert deep == r and deep._cache == ["kept"] and deep._cache is not r._cache
    with pytest.raises(TypeError):
        r.model_copy(update={"y": 1})
    assert R.model_validate(r) is r and R.model_validate({"x": 2}) == R(x=2.0)
    assert r.to_dict()["assumptions"][0]["name"] == "n" and list(r.to_dict())[-1] == "assumptions"
    with pytest.raises(TypeError):
        R()
    with pytest.raises(TypeError):
        R(x=1, y=2)  # an unknown keyword is an error, not silently dropped
    with pytest.raises(TypeError):
        R(x=1, _n=2)  # nor can a private attribute be passed
    with pytest.raises(TypeError):
        hash(r)  # a mutable result is not hashable (as a pydantic model)


class Nested(Result):  # at module level: its annotations resolve (typing.get_type_hints)
    inner: Assumption = Assumption(name="none", value=None, source="s")
    counts: dict[str, float] = {}


def test_records_convert_nested_and_frozen_rows():
    from billshape import catalog

    n = Nested(inner={"name": "k", "value": 2, "source": "s"}, counts={"a": 1, "b": np.int64(2)})
    assert n.inner == Assumption(name="k", value=2, source="s")
    assert n.counts == {"a": 1.0, "b": 2.0} and all(type(v) is float for v in n.counts.values())
    assert Nested().counts == {} and Nested().counts is not Nested().counts

    class Local(Result):  # names a class local to this function: the values are stored as given
        here: Local | None = None
        x: float = 0.0

    assert type(Local(x=1).x) is int

    row = catalog.constants()["hours_per_year"]
    assert type(row.value) is float and hash(row) == hash(row.model_copy()) and row == row.model_copy()
    with pytest.raises(ValueError):
        catalog.GpuPrice(provider="x", gpu="y", tier="nope", usd_per_gpu_hour=1, source="s", as_of="2024-01-01")
    assert type(catalog.GpuPrice(provider="x", gpu="y", tier="spot", usd_per_gpu_hour=1, source="s",
                                 as_of="2024-01-01").usd_per_gpu_hour) is float
    assert catalog.numeric_fields(catalog.GpuPrice) == {"usd_per_gpu_hour"}
