"""Issue 16: dated catalog snapshots (refresh against a local fixture server), --snapshot on the verbs, staleness
warnings with --max-age-days, and plans priced at a date (--as-of) that do not depend on the day they run."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
from conftest import assert_one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "refresh"
SOURCES = {"skypilot-aws": "aws_vms.csv", "skypilot-gcp": "gcp_vms.csv", "genai-prices": "genai_prices.json",
           "epoch-models": "epoch_models.csv"}


@pytest.fixture(scope="module")
def server():
    """The fixture files over HTTP on 127.0.0.1 (a thread of this test process)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_args):  # the CLI's stderr must hold only its own line
            pass

    handler = functools.partial(Quiet, directory=str(FIXTURES))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    from billshape import snapshots

    monkeypatch.setenv("BILLSHAPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BILLSHAPE_SNAPSHOT", raising=False)
    monkeypatch.setenv("BILLSHAPE_TODAY", "2026-12-03")
    snapshots.use(None)
    yield tmp_path / "data"
    monkeypatch.delenv("BILLSHAPE_SNAPSHOT", raising=False)
    snapshots.use(None)


def refresh_args(server, **files):
    args = ["catalog", "refresh"]
    for name, file in {**SOURCES, **files}.items():
        args += ["--source", f"{name}={server}/{file}", "--only", name]
    return args


def test_refresh_writes_a_snapshot_and_a_broken_refresh_leaves_it_intact(cli, server, data_dir):
    res = cli(*refresh_args(server), "--json")
    assert res.code == 0, res.err
    manifest = res.json()
    sid = manifest["id"]
    folder = data_dir / "snapshots" / sid
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["fetched_at"].endswith("Z") and set(manifest["files"]) == set(SOURCES)
    for name, file in SOURCES.items():
        entry = manifest["files"][name]
        content = (FIXTURES / file).read_bytes()
        assert entry["source"] == f"{server}/{file}"
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert (folder / entry["file"]).read_bytes() == content
        assert not os.access(folder / entry["file"], os.W_OK) or os.geteuid() == 0  # written read-only
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    broken = cli(*refresh_args(server, **{"skypilot-aws": "broken_vms.csv"}), "--json")
    assert_one_line_error(broken, "skypilot-aws")
    assert "non-negative" in broken.err
    missing = cli(*refresh_args(server, **{"skypilot-gcp": "no_such_file.csv"}), "--json")
    assert_one_line_error(missing, "skypilot-gcp")

    assert sorted(p.name for p in (data_dir / "snapshots").iterdir()) == [sid]  # no new snapshot, no temp folder
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    listed = cli("catalog", "snapshots", "--json").json()
    assert [m["id"] for m in listed["snapshots"]] == [sid] and listed["snapshots"][0] == manifest


def test_a_failed_write_leaves_no_snapshot(server, data_dir, monkeypatch):
    from billshape import snapshots

    def fail(*_a):
        raise OSError("disk full")

    monkeypatch.setattr(snapshots.os, "rename", fail)
    with pytest.raises(OSError):
        snapshots.refresh(overrides={"skypilot-aws": f"{server}/aws_vms.csv"}, only=["skypilot-aws"])
    assert snapshots.list_snapshots() == []
    assert list((data_dir / "snapshots").iterdir()) == []


@pytest.fixture
def snapshot_id(cli, server, data_dir):
    res = cli(*refresh_args(server), "--json")
    assert res.code == 0, res.err
    return res.json()["id"]


def test_snapshot_switches_train_serve_catalog_and_plan_prices(cli, snapshot_id, monkeypatch):
    train = ["train", "--gpu", "h100", "--gpus", "8", "--days", "1", "--provider", "aws", "--json"]
    shipped = cli(*train).json()
    fresh = cli(*train, "--snapshot", snapshot_id).json()
    assert shipped["usd_per_gpu_hour"] == 12.29 and "snapshot" not in shipped
    assert fresh["usd_per_gpu_hour"] == 55.04 / 8 and fresh["snapshot"] == snapshot_id
    price = next(a for a in fresh["assumptions"] if a["unit"] == "USD/GPU-hour")
    assert snapshot_id in price["source"] and price["as_of"] == snapshot_id[:4] + "-" + snapshot_id[4:6] + "-" + snapshot_id[6:8]
    assert cli(*train, "--snapshot", "shipped").json() == shipped
    monkeypatch.setenv("BILLSHAPE_SNAPSHOT", snapshot_id)
    assert cli(*train).json()["usd_per_gpu_hour"] == 55.04 / 8  # the environment variable does the same
    monkeypatch.delenv("BILLSHAPE_SNAPSHOT")

    serve = ["serve", "--tokens-per-second", "1000", "--gpus", "8", "--gpu", "h100", "--provider", "aws", "--json"]
    assert cli(*serve, "--snapshot", snapshot_id).json()["usd_per_gpu_hour"] == 55.04 / 8
    assert cli(*serve).json()["usd_per_gpu_hour"] == 12.29

    rows = cli("catalog", "prices", "--provider", "gcp", "--gpu", "l4", "--snapshot", snapshot_id, "--json").json()["rows"]
    od = [r for r in rows if r["tier"] == "on-demand"]
    assert [r["usd_per_gpu_hour"] for r in od] == [round((4.48032 + 3.52301) / 8, 6)]  # GPU row + host VM row
    gcp_h100 = cli("catalog", "prices", "--provider", "gcp", "--gpu", "h100", "--tier", "on-demand",
                   "--snapshot", snapshot_id, "--json").json()["rows"]
    assert all(r["usd_per_gpu_hour"] != 10.0 for r in gcp_h100)  # a GPU-only row (no host VM row) is left out
    assert all("snapshot" not in r["source"] for r in gcp_h100)  # ... so the shipped rows stay

    plan = ["plan", "high_volume_self_host", "--samples", "50", "--json"]
    api = {a["name"]: a["value"] for a in cli(*plan, "--snapshot", snapshot_id).json()["assumptions"]}
    assert api["gpt-4.1-mini input price"] == 0.2 and api["gpt-4.1-mini output price"] == 0.8
    monkeypatch.setenv("BILLSHAPE_SNAPSHOT", snapshot_id)
    dated = cli(*plan).json()
    src = next(a["source"] for a in dated["assumptions"] if a["name"] == "gpt-4.1-mini input price")
    assert dated["snapshot"] == snapshot_id and f"snapshot {snapshot_id}" in src
    monkeypatch.delenv("BILLSHAPE_SNAPSHOT")
    assert {a["name"]: a["value"] for a in cli(*plan).json()["assumptions"]}["gpt-4.1-mini input price"] == 0.4


def test_unknown_snapshot_is_a_one_line_error(cli, data_dir):
    res = cli("train", "--gpu", "h100", "--gpus", "8", "--days", "1", "--provider", "aws", "--snapshot", "nope", "--json")
    assert_one_line_error(res, "--snapshot")
    assert_one_line_error(cli("catalog", "refresh", "--source", "skypilot-aws"), "--source")
    assert_one_line_error(cli("catalog", "refresh", "--only", "nothing-like-it"), "--only")


# -- staleness ---------------------------------------------------------------------------------------------------
LAMBDA = ["train", "--gpu", "h100", "--gpus", "8", "--days", "1", "--provider", "lambda", "--json"]


def test_max_age_days_names_the_old_rows(cli, data_dir):
    assert "warnings" not in cli(*LAMBDA).json()  # 9 days old on 2026-12-03: fresh under the 90-day threshold
    res = cli(*LAMBDA, "--max-age-days", "5").json()
    assert res["warnings"] == ["stale: lambda h100-sxm on-demand price (gpu_8x_h100_sxm5) is 9 days old on 2026-12-03 "
                               "(as_of 2026-11-24; prices go stale after 5 days)"]
    assert_one_line_error(cli(*LAMBDA, "--max-age-days", "-1"), "--max-age-days")
    assert_one_line_error(cli(*LAMBDA, "--max-age-days", "2.5"), "--max-age-days")


def test_warnings_are_on_screen_too(cli, data_dir):
    out = cli(*[a for a in LAMBDA if a != "--json"], "--max-age-days", "5").out
    assert "warning: stale: lambda h100-sxm on-demand price" in out


def test_specs_never_go_stale_and_user_input_never_does():
    from billshape import staleness
    from billshape.results import Assumption, user

    on = dt.date(2030, 1, 1)
    spec = Assumption(name="peak", value=1e15, unit="FLOP/s", source="datasheet", as_of="2020-01-01")
    price = Assumption(name="rent", value=2.0, unit="USD/GPU-hour", source="a quote", as_of="2020-01-01")
    assert staleness.warnings_for([spec, user("rent", 2.0, "USD/GPU-hour", "price")], on) == []
    assert staleness.warnings_for([price], on)[0].startswith("stale: rent is 3653 days old on 2030-01-01")


@settings(max_examples=60, deadline=None)
@given(age=st.integers(min_value=-400, max_value=4000), limit=st.integers(min_value=0, max_value=3650))
def test_a_price_is_named_exactly_when_older_than_the_threshold_or_after_the_date(age, limit):
    from billshape import staleness
    from billshape.results import Assumption

    on = dt.date(2026, 12, 3)
    a = Assumption(name="p", value=1.0, unit="USD", source="row", as_of=(on - dt.timedelta(days=age)).isoformat())
    token = staleness.set_max_age_days(limit)
    try:
        found = staleness.warnings_for([a], on)
    finally:
        staleness._max_age.reset(token)
    assert bool(found) == (age > limit or age < 0)
    if found:
        assert (f"{age} days old" in found[0]) if age > 0 else ("after the pricing date" in found[0])


def test_the_price_threshold_is_a_catalog_row():
    from billshape import catalog

    row = catalog.constant("stale_after_days_price")
    assert row.value == 90 and row.unit == "days" and row.source and row.as_of


# -- reproducible plans ------------------------------------------------------------------------------------------
def test_a_plan_priced_at_a_date_is_the_same_on_any_day(cli, monkeypatch, data_dir):
    args = ["plan", "high_volume_self_host", "--as-of", "2025-06-01", "--samples", "300", "--json"]
    outs = []
    for today in ("2026-12-03", "2031-02-28"):
        monkeypatch.setenv("BILLSHAPE_TODAY", today)
        res = cli(*args)
        assert res.code == 0, res.err
        outs.append(res.out)
    assert outs[0] == outs[1]
    data = json.loads(outs[0])
    assert data["as_of"] == "2025-06-01"
    priced = {a["name"]: a for a in data["assumptions"]}
    assert priced["as_of"]["value"] == "2025-06-01" and priced["gpt-4.1-mini input price"]["as_of"] == "2025-06-01"
    assert any(w.startswith("stale: training: lambda h100-sxm on-demand price") and "on 2025-06-01" in w
               for w in data["warnings"])  # the quote in force then (Epoch's 2024-01-29 Lambda quote) is old
    default = cli("plan", "high_volume_self_host", "--samples", "300", "--json").json()
    assert default["as_of"] == "2026-12-03"  # the shipped default date, stated


def test_the_scenario_key_as_of_does_what_the_flag_does(cli, tmp_path, data_dir):
    from billshape.plan.loader import resolve

    text = resolve("high_volume_self_host").read_text() + "\nas_of: 2025-06-01\n"
    path = tmp_path / "dated.yaml"
    path.write_text(text)
    keyed = cli("plan", str(path), "--samples", "300", "--json").json()
    flagged = cli("plan", "high_volume_self_host", "--as-of", "2025-06-01", "--samples", "300", "--json").json()
    assert keyed["as_of"] == "2025-06-01" and keyed["summary"] == flagged["summary"]
    assert keyed["warnings"] == flagged["warnings"]
    assert_one_line_error(cli("plan", "high_volume_self_host", "--as-of", "June 1st"), "--as-of")


def test_today_follows_the_faked_clock(monkeypatch):
    from billshape import staleness

    monkeypatch.setenv("BILLSHAPE_TODAY", "2027-01-02")
    assert staleness.today() == dt.date(2027, 1, 2)


# -- validation --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,content,why", [
    ("skypilot-aws", b"InstanceType,Price\nx,1\n", "missing: AcceleratorName"),
    ("skypilot-aws", b"InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region\n", "at least one row"),
    ("genai-prices", b"{not json", "valid JSON"),
    ("genai-prices", b'[{"id": "x", "models": [{"id": "m", "prices": {"input_mtok": -1}}]}]', "non-negative"),
    ("epoch-models", b"Name,Date\nx,2020\n", "missing: Model"),
])
def test_a_broken_file_is_refused_with_a_reason(name, content, why):
    from billshape import snapshots

    with pytest.raises(snapshots.RefreshError) as err:
        snapshots.validate(name, content)
    assert why in str(err.value) and "\n" not in str(err.value)


def test_the_fixture_files_pass_validation():
    from billshape import snapshots

    for name, file in SOURCES.items():
        assert snapshots.validate(name, (FIXTURES / file).read_bytes())


def test_default_sources_are_the_projects_public_raw_files():
    from billshape import snapshots

    urls = snapshots.sources()
    assert urls["genai-prices"].startswith("https://raw.githubusercontent.com/pydantic/genai-prices/")
    assert urls["skypilot-gcp"].endswith("skypilot-org/skypilot-catalog/master/catalogs/v7/gcp/vms.csv")
    assert urls["epoch-models"] == "https://epoch.ai/data/all_ai_models.csv"
