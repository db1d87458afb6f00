"""Measured self-hosted economics from Prometheus scrapes (``usage measured``) and the ledger served as Prometheus
metrics (``usage metrics``): known counter rates, resets, timestamps vs --window-seconds, loopback-only URLs, the
JSON contract, the ``--self-hosted NAME=measured:FILE`` price, and an exporter a parser reads back."""

from __future__ import annotations

import json
import threading
import urllib.request
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import serving, usage
from billshape.chains import MeasuredRequest, MetricsRequest, run
from billshape.errors import BillshapeInputError
from billshape.usage import exporter, prom
from billshape.usage import prices as P
from billshape.usage.measured_metrics import measure, usd_per_million_at_rent
from conftest import assert_one_line_error

EX = Path(__file__).resolve().parents[1] / "examples" / "usage"
M = EX / "metrics"
VLLM = [str(M / f"vllm_{i}.prom") for i in range(3)]
RESET = [str(M / f"vllm_reset_{i}.prom") for i in range(3)]
DCGM = str(M / "dcgm_0.prom")
CONTRACT_KEYS = ("output_tokens_per_second", "input_tokens_per_second", "utilization", "usd_per_million_output_tokens",
                 "modelled_output_tokens_per_second", "measured_over_modelled")


def _page(body: str, ts: int | None = None) -> str:
    t = "" if ts is None else f" {ts}"
    return "".join(f"{line}{t}\n" for line in body.strip().splitlines())


# --- pure functions: known counters -----------------------------------------------------------------------------

def test_counter_increase_known_values_and_resets():
    assert prom.counter_increase([10, 25, 40]) == (30.0, 0)
    assert prom.counter_increase([100, 30, 50]) == (50.0, 1)  # restart: 30 since zero, then +20
    assert prom.counter_increase([5, 0, 0, 7]) == (7.0, 1)
    assert prom.counter_increase([42]) == (0.0, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=2, max_size=12))
def test_increase_without_reset_is_last_minus_first_and_never_negative(values):
    inc, resets = prom.counter_increase(values)
    assert inc >= 0
    mono = sorted(values)
    assert prom.counter_increase(mono) == (float(mono[-1] - mono[0]), 0)
    assert resets == sum(b < a for a, b in zip(values, values[1:]))


def test_rate_from_window_seconds():
    s = [prom.parse_scrape(_page(f'x_total{{a="1"}} {v}\nx_total{{a="2"}} {2 * v}'), f"s{i}")
         for i, v in enumerate((1000, 1600, 2200))]
    r = prom.counter_rate(s, "x_total", window_seconds=120)
    assert (r.increase, r.seconds, r.series, r.resets, r.timing) == (3600.0, 120.0, 2, 0, "window")
    assert r.per_second == pytest.approx(30.0)  # 1200/120 + 2400/120
    with pytest.raises(BillshapeInputError) as e:
        prom.counter_rate(s, "x_total")
    assert e.value.field == "window_seconds"


def test_rate_from_sample_timestamps_wins_over_window():
    t0 = 1_764_763_200_000  # ms
    s = [prom.parse_scrape(_page(f"x_total {v}", ts), "s") for v, ts in ((0, t0), (300, t0 + 30_000), (900, t0 + 90_000))]
    r = prom.counter_rate(s, "x_total", window_seconds=10)  # the timestamps say 90 s, not 10
    assert (r.seconds, r.timing) == (90.0, "timestamps")
    assert r.per_second == pytest.approx(10.0)


def test_rate_with_reset_in_the_window():
    s = [prom.parse_scrape(_page(f"x_total {v}"), "s") for v in (5000, 200, 800)]
    r = prom.counter_rate(s, "x_total", window_seconds=60)
    assert (r.increase, r.resets) == (800.0, 1)
    assert r.per_second == pytest.approx(800 / 60)


def test_one_scrape_or_time_going_backwards_is_refused():
    one = [prom.parse_scrape("x_total 5\n", "only")]
    with pytest.raises(BillshapeInputError, match="two or more"):
        prom.counter_rate(one, "x_total", 60)
    back = [prom.parse_scrape(_page("x_total 5", 2000), "a"), prom.parse_scrape(_page("x_total 9", 1000), "b")]
    with pytest.raises(BillshapeInputError, match="time order"):
        prom.counter_rate(back, "x_total")


def test_bad_scrapes():
    with pytest.raises(BillshapeInputError) as e:
        prom.parse_scrape("this is { not prometheus", "junk")
    assert e.value.field == "metrics"
    with pytest.raises(BillshapeInputError):
        prom.parse_scrape("# only a comment\n", "empty")


def test_nan_samples_are_left_out():
    s = prom.parse_scrape("a_total 5\nb NaN\nc +Inf\n", "x")
    assert s.names() == {"a_total"}


def test_usd_per_million_at_rent_formula():
    assert usd_per_million_at_rent(2, 2.5, 1000) == pytest.approx(2 * 2.5 / 3600 / 1000 * 1e6)
    assert usd_per_million_at_rent([1, 8], 3.6, 1000).tolist() == pytest.approx([1.0, 8.0])


# --- the shipped sample scrapes: known answers ------------------------------------------------------------------

def test_shipped_vllm_scrapes_known_rates_and_dcgm():
    res = measure([*VLLM, DCGM], window_seconds=120, price=2.5, gpu="h100", model="llama-3.1-70b", precision="fp8")
    assert res.engine == "vllm" and res.served_model == "meta-llama/Llama-3.1-70B-Instruct"
    assert res.output_tokens_per_second == pytest.approx(132_390 / 120)
    assert res.input_tokens_per_second == pytest.approx(529_560 / 120)
    assert res.requests_per_second == pytest.approx(441 / 120)
    assert res.utilization == pytest.approx(0.70)  # DCGM (71 + 69) / 2 %
    assert res.gpus == 2 and res.gpu_model_name == "NVIDIA H100 80GB HBM3"
    assert res.gpu_power_watts == pytest.approx(521.4 + 508.9)
    assert res.usd_per_million_output_tokens == pytest.approx(2 * 2.5 / (3600 * 132_390 / 120) * 1e6)
    est = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", input_tokens=1201,
                        output_tokens=300, price=2.5)
    assert res.modelled_output_tokens_per_second == pytest.approx(est.output_tokens_per_second)
    assert res.measured_over_modelled == pytest.approx(res.output_tokens_per_second / est.output_tokens_per_second)
    assert res.busy_over_modelled == pytest.approx(res.measured_over_modelled / 0.70)
    assert res.modelled_usd_per_million_output_tokens == pytest.approx(
        res.usd_per_million_output_tokens * res.measured_over_modelled)  # same basis: rent over output tokens
    assert res.counter_resets == 0 and res.timing == "window"


def test_shipped_reset_scrapes_use_their_timestamps():
    res = measure(RESET, gpus=2, price=2.5)
    assert res.timing == "timestamps" and res.window_seconds == 120
    assert res.output_tokens_per_second == pytest.approx((20_000 + 65_000) / 120)
    assert res.input_tokens_per_second == pytest.approx((80_000 + 260_000) / 120)
    assert res.counter_resets > 0 and any("reset" in w for w in res.warnings)
    assert res.utilization == 1.0  # running > 0 in every scrape, no DCGM
    naive = (85_000 - 5_000_000) / 120  # without reset handling the rate would be negative
    assert naive < 0 < res.output_tokens_per_second


def test_sglang_names_and_busy_share_from_running(tmp_path):
    paths = []
    for i, (g, p, r) in enumerate(((1000, 4000, 3), (1600, 6400, 0), (2200, 8800, 5), (2800, 11200, 0))):
        path = tmp_path / f"s{i}.prom"
        path.write_text(f"""# TYPE sglang:generation_tokens_total counter
sglang:generation_tokens_total{{model_name="m"}} {g}
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{{model_name="m"}} {p}
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{{model_name="m"}} {r}
""")
        paths.append(str(path))
    res = measure(paths, window_seconds=90, gpus=1, price=3.6)
    assert res.engine == "sglang"
    assert res.output_tokens_per_second == pytest.approx(1800 / 90)
    assert res.utilization == pytest.approx(0.5)
    assert res.usd_per_million_output_tokens == pytest.approx(3.6 / 3600 / 20 * 1e6)


def test_no_price_no_dollars_and_gpus_needed_for_a_price():
    res = measure(VLLM, window_seconds=120)
    assert res.usd_per_million_output_tokens is None and res.gpus is None
    with pytest.raises(BillshapeInputError) as e:
        measure(VLLM, window_seconds=120, price=2)
    assert e.value.field == "gpus"


# --- URLs: loopback only ----------------------------------------------------------------------------------------

@pytest.fixture
def served_sample():
    """The shipped scrapes served one after another on a loopback port (each GET: the next scrape)."""
    pages = [Path(p).read_bytes() for p in RESET]
    hits = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = pages[min(len(hits), len(pages) - 1)]
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}/metrics", hits
    srv.shutdown()
    srv.server_close()


def test_url_on_loopback_is_read(served_sample):
    url, hits = served_sample
    res = run(MeasuredRequest(metrics=[url, url, url.replace("127.0.0.1", "localhost")], gpus=2, price=2.5))
    assert len(hits) == 3
    assert res.output_tokens_per_second == pytest.approx(85_000 / 120)


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000/metrics", "http://example.com/metrics", "ftp://127.0.0.1/m",
                                 "http://127.0.0.1.evil.example/metrics", "http://[::2]:80/metrics"])
def test_non_loopback_urls_are_refused(url, cli):
    with pytest.raises(BillshapeInputError) as e:
        prom.check_loopback(url)
    assert e.value.field == "metrics"
    assert_one_line_error(cli("usage", "measured", "--metrics", url, "--metrics", url, "--gpus", "1", "--price", "2"),
                          "--metrics")


def test_loopback_forms_allowed():
    for url in ("http://127.0.0.1:8000/metrics", "http://localhost/metrics", "http://[::1]:9400/metrics"):
        assert prom.check_loopback(url) == url


# --- CLI and JSON contract --------------------------------------------------------------------------------------

def test_cli_json_keys(cli):
    args = ["usage", "measured", *sum((["--metrics", p] for p in [*VLLM, DCGM]), []), "--window-seconds", "120",
            "--price", "2.5", "--gpu", "h100", "--model", "llama-3.1-70b", "--precision", "fp8", "--json"]
    res = cli(*args)
    assert res.code == 0, res.err
    data = json.loads(res.out)
    for k in CONTRACT_KEYS:
        assert isinstance(data[k], float), k
    assert data["usd_per_million_output_tokens"] == pytest.approx(1.2589, rel=1e-3)
    assert 0.3 < data["measured_over_modelled"] < 0.8
    assert cli(*args[:-1]).code == 0  # the table renders too
    doc = (Path(__file__).resolve().parents[1] / "docs" / "usage.md").read_text()
    for k in ("output_tokens_per_second", "usd_per_million_output_tokens", "modelled_usd_per_million_output_tokens",
              "measured_over_modelled"):
        assert f'"{k}": {data[k]!r}' in doc, k  # docs/usage.md shows this run's figures


@pytest.mark.parametrize("extra,flag", [([], "--window-seconds"), (["--window-seconds", "-5"], "--window-seconds"),
                                        (["--window-seconds", "60", "--gpus", "0", "--price", "2"], "--gpus"),
                                        (["--window-seconds", "60", "--gpus", "2", "--price", "-1"], "--price")])
def test_cli_bad_input_one_line(cli, extra, flag):
    assert_one_line_error(cli("usage", "measured", "--metrics", VLLM[0], "--metrics", VLLM[1], *extra), flag)


def test_cli_missing_file_one_line(cli, tmp_path):
    assert_one_line_error(cli("usage", "measured", "--metrics", str(tmp_path / "nope.prom"), "--metrics", VLLM[1],
                              "--window-seconds", "60"), "--metrics")


# --- the ledger takes the measured figure -------------------------------------------------------------------------

def test_self_hosted_measured_price_in_the_ledger(tmp_path, cli):
    res = cli("usage", "measured", *sum((["--metrics", p] for p in [*VLLM, DCGM]), []), "--window-seconds", "120",
              "--price", "2.5", "--json")
    measured_json = tmp_path / "measured.json"
    measured_json.write_text(res.out)
    x = json.loads(res.out)["usd_per_million_output_tokens"]
    prices = P.read_self_hosted([f"llama-3.1-8b-ours=measured:{measured_json}"])
    up = prices[("", "llama-3.1-8b-ours")]
    assert up.input_mtok == 0 and up.output_mtok == Decimal(repr(x)).quantize(Decimal("1e-9"))
    db = str(tmp_path / "u.duckdb")
    ing = usage.ingest([str(EX / "requests.csv")], db, mapping={"tenant": "customer"},
                       self_hosted=[f"llama-3.1-8b-ours=measured:{measured_json}"])
    assert ing.rows_priced > 0
    rep = usage.report(db, "model")
    row = next(r for r in rep.rows if r["key"] == "llama-3.1-8b-ours")
    expect = int((row["output_tokens"] * up.output_mtok).to_integral_value(rounding=ROUND_HALF_UP))
    assert row["usd_micro"] == expect
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"usd_per_million_output_tokens": None}))
    with pytest.raises(BillshapeInputError) as e:
        P.read_self_hosted([f"x=measured:{bad}"])
    assert e.value.field == "self_hosted"


# --- the exporter -------------------------------------------------------------------------------------------------

@pytest.fixture
def ledger(tmp_path):
    db = str(tmp_path / "u.duckdb")
    usage.ingest([str(EX / "requests.csv")], db, mapping={"tenant": "customer"}, self_hosted=[str(EX / "selfhosted.yaml")])
    return db


def _scrape(url: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_exporter_serves_the_ledgers_totals(ledger, tmp_path):
    rep = usage.report(ledger, "customer")
    snap = exporter.snapshot(ledger, "customer", "month")
    revenue = tmp_path / "revenue.csv"
    revenue.write_text("customer,revenue_usd\nacme,1.0\nglobex,0.001\n")
    exp = run(MetricsRequest(db=ledger, port=0, budget_usd=0.01, revenue=str(revenue)))
    try:
        assert exp.url.startswith("http://127.0.0.1:")
        got = _scrape(exp.url)
    finally:
        exp.stop()
    assert got[("billshape_ledger_up", ())] == 1.0
    assert got[("billshape_ledger_total_cost_usd", ())] == pytest.approx(rep.total_usd)
    for r in rep.rows:
        lab = (("by", "customer"), ("group", r["key"]))
        assert got[("billshape_ledger_cost_usd", lab)] == pytest.approx(r["usd"])
        assert got[("billshape_ledger_requests", lab)] == r["requests"]
        assert got[("billshape_ledger_output_tokens", lab)] == r["output_tokens"]
    assert sum(v for (n, _), v in got.items() if n == "billshape_ledger_cost_usd") == pytest.approx(rep.total_usd)
    per = (("by", "customer"), ("group", "acme"), ("period", snap.period_key))
    cost = snap.period_cost["acme"]
    assert got[("billshape_period_cost_usd", per)] == pytest.approx(cost)
    assert got[("billshape_budget_used_ratio", per)] == pytest.approx(cost / 0.01)
    assert got[("billshape_margin_usd", per)] == pytest.approx(1.0 - cost)
    assert got[("billshape_margin_ratio", per)] == pytest.approx((1.0 - cost) / 1.0)
    assert snap.period_key == "2025-03"


def test_exporter_period_all_equals_the_totals(ledger):
    snap = exporter.snapshot(ledger, "customer", "all")
    rep = usage.report(ledger, "customer")
    assert snap.period_key == "all"
    assert snap.period_cost == {r["key"]: r["usd"] for r in rep.rows}


def test_exporter_bad_input(ledger, tmp_path, cli):
    with pytest.raises(BillshapeInputError) as e:
        exporter.start(ledger, 70000)
    assert e.value.field == "port"
    assert_one_line_error(cli("usage", "metrics", "--db", str(tmp_path / "none.duckdb"), "--port", "0"), "--db")
    assert_one_line_error(cli("usage", "metrics", "--db", ledger, "--port", "0", "--budget-usd", "-3"), "--budget-usd")
    bad = tmp_path / "rev.csv"
    bad.write_text("who,money\nacme,1\n")
    assert_one_line_error(cli("usage", "metrics", "--db", ledger, "--port", "0", "--revenue", str(bad)), "--revenue")


def test_grafana_dashboard_queries_served_metrics():
    board = json.loads((Path(__file__).resolve().parents[1] / "docs" / "grafana_billshape.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert exprs
    import re

    names = {m for e in exprs for m in re.findall(r"billshape_[a-z_]+", e)}
    served = {"billshape_ledger_cost_usd", "billshape_ledger_requests", "billshape_ledger_input_tokens",
              "billshape_ledger_output_tokens", "billshape_ledger_total_cost_usd", "billshape_ledger_rows_quarantined",
              "billshape_ledger_last_row_timestamp_seconds", "billshape_period_cost_usd", "billshape_budget_usd",
              "billshape_budget_used_ratio", "billshape_revenue_usd", "billshape_margin_usd", "billshape_margin_ratio",
              "billshape_ledger_up"}
    assert names <= served, names - served


def test_exporter_says_down_when_the_ledger_cannot_be_read(ledger):
    exp = exporter.start(ledger, 0)
    try:
        assert _scrape(exp.url)[("billshape_ledger_up", ())] == 1.0
        Path(ledger).rename(ledger + ".moved")
        got = _scrape(exp.url)
    finally:
        exp.stop()
    assert got == {("billshape_ledger_up", ()): 0.0}
