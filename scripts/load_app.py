"""Load test of billshape's web app: N concurrent sessions on loopback, each driving the Serve, Train and Plan pages.

Each session speaks Streamlit's own protocol over one websocket (``/_stcore/stream``), as a browser tab
does: it loads a page, changes widgets (GPUs, utilization; the Plan page's Monte Carlo samples and seed) and
waits for the rerun to finish, then checks the figure shown against the library (``billshape.estimates``,
``billshape.scenario``). Bounded in sessions, rounds and time.

    PYTHONPATH=src python scripts/load_app.py                 # starts its own server on a free port
    PYTHONPATH=src python scripts/load_app.py --url http://127.0.0.1:8501   # an app already running

Prints one JSON object (sessions, reruns, errors, latency percentiles) and exits 1 on any error: an
exception or error element in a page, a wrong figure, a dropped connection, or a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from billshape.app import server  # noqa: E402


class Session:
    """One browser-tab-like session over Streamlit's websocket protocol."""

    def __init__(self, ws):
        self.ws = ws
        self.widgets: dict[str, tuple[str, object]] = {}  # label -> (widget id, proto)

    async def run(self, page: str, states: dict[str, float], timeout_s: float) -> dict:
        """Rerun ``page`` with widget ``states`` (by label); return metrics, errors and exceptions."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.page_name = page
        for label, value in states.items():
            wid, proto = self.widgets[f"{page}:{label}"]
            w = cs.widget_states.widgets.add()
            w.id = wid
            if proto == "slider":
                w.double_array_value.data.append(float(value))
            elif proto == "int":
                w.int_value = int(value)
            else:
                w.double_value = float(value)
        await self.ws.send(msg.SerializeToString())
        out = {"metrics": {}, "errors": [], "exceptions": []}
        started = False
        async with asyncio.timeout(timeout_s):
            while True:
                fm = ForwardMsg()
                fm.ParseFromString(await self.ws.recv())
                kind = fm.WhichOneof("type")
                if kind == "new_session":
                    started = True
                    out = {"metrics": {}, "errors": [], "exceptions": []}
                elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                    el = fm.delta.new_element
                    which = el.WhichOneof("type")
                    if which == "metric":
                        out["metrics"][el.metric.label] = el.metric.body
                    elif which == "alert" and el.alert.format == 1:  # ERROR
                        out["errors"].append(el.alert.body)
                    elif which == "exception":
                        out["exceptions"].append(el.exception.message)
                    elif which == "number_input":
                        kind_ = "int" if el.number_input.data_type == el.number_input.INT else "float"
                        self.widgets[f"{page}:{el.number_input.label}"] = (el.number_input.id, kind_)
                    elif which == "slider":
                        self.widgets[f"{page}:{el.slider.label}"] = (el.slider.id, "slider")
                elif kind == "script_finished" and started:
                    if fm.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                        return out
                    if fm.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:  # a newer run follows
                        out = {"metrics": {}, "errors": [], "exceptions": []}
                        continue
                    out["exceptions"].append(f"script finished with status {fm.script_finished}")
                    return out


PLAN_EXAMPLE = "high_volume_self_host.yaml"  # the Plan page's default example (billshape.app.views.plan.DEFAULT)
PLAN_DEFAULT_SAMPLES = 20_000  # the page's (and the CLI's) default, run once per session on its first visit


@functools.lru_cache(maxsize=None)
def _plan_npv(samples: int, seed: int) -> str:
    from billshape import scenario
    from billshape.report.html import _fmt

    res = scenario.load(scenario.examples_dir() / PLAN_EXAMPLE).evaluate(samples=samples, seed=seed)
    return _fmt("npv_usd", res.summary["npv_usd"]["p50"])


def _expected(page: str, gpus: int, utilization: float | None) -> tuple[str, str]:
    """The figure the page must show, from the library (label, formatted value); on Plan, ``gpus`` is the
    sample count and ``utilization`` the seed."""
    from billshape.app._ui import fmt
    from billshape.estimates import serving_cost, training_bill

    if page == "plan":
        return "NPV, P50", _plan_npv(int(gpus), int(utilization))
    if page == "serve":
        res = serving_cost(tokens_per_second=14_800, gpus=gpus, price=2.0, utilization=utilization)
        return "USD per million output tokens", fmt(res.usd_per_million_output_tokens, "USD")
    bill = training_bill(gpu="a100", gpus=gpus, days=14, price=2.5)
    return "Final run", fmt(bill.total_usd, "USD")


async def _one_session(n: int, url: str, rounds: int, timeout_s: float, latencies: list[float],
                       errors: list[str], plan_samples: int, plan_latencies: list[float]) -> None:
    import websockets

    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    try:
        async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=2**26,
                                      open_timeout=timeout_s) as ws:
            s = Session(ws)
            for page, g, u in (("serve", 8, 1.0), ("train", 280, 1.0), ("plan", PLAN_DEFAULT_SAMPLES, 0)):
                t0 = time.perf_counter()
                first = await s.run(page, {}, timeout_s)
                lat = time.perf_counter() - t0
                latencies.append(lat)
                if page == "plan":
                    plan_latencies.append(lat)
                _check(first, page, g, u, n, errors)
            for r in range(rounds):
                gpus = 8 * (1 + (n + r) % 4)
                util = round(0.25 + 0.25 * ((n + 2 * r) % 4), 2)
                seed = (n + r) % 5
                for page, states, g, u in (("serve", {"GPUs": gpus, "Utilization": util}, gpus, util),
                                           ("train", {"GPUs": 280 + gpus}, 280 + gpus, util),
                                           ("plan", {"Samples": plan_samples, "Seed": seed}, plan_samples, seed)):
                    t0 = time.perf_counter()
                    res = await s.run(page, states, timeout_s)
                    lat = time.perf_counter() - t0
                    latencies.append(lat)
                    if page == "plan":
                        plan_latencies.append(lat)
                    _check(res, page, g, u, n, errors)
    except Exception as exc:  # a dropped connection or timeout is an error of the run
        errors.append(f"session {n}: {type(exc).__name__}: {exc}")


def _check(res: dict, page: str, gpus: int, util: float, n: int, errors: list[str]) -> None:
    if res["exceptions"] or res["errors"]:
        errors.append(f"session {n} {page}: {res['exceptions'] + res['errors']}")
        return
    label, want = _expected(page, gpus, util)
    got = res["metrics"].get(label)
    if got != want:
        what = f"samples={gpus} seed={util}" if page == "plan" else f"gpus={gpus} util={util}"
        errors.append(f"session {n} {page} {what}: {label} shows {got!r}, library says {want!r}")


def _percentiles(latencies: list[float]) -> dict:
    lat = sorted(latencies)
    pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 3)) if lat else (lambda q: None)
    return {"p50": pct(0.5), "p95": pct(0.95), "max": round(lat[-1], 3) if lat else None,
            "mean": round(statistics.fmean(lat), 3) if lat else None}


async def _main(url: str, sessions: int, rounds: int, timeout_s: float, plan_samples: int) -> dict:
    latencies: list[float] = []
    plan_latencies: list[float] = []
    errors: list[str] = []
    # the library's figures for the Plan page, computed before the clock starts (not part of the load)
    for n in range(sessions):
        for r in range(rounds):
            _plan_npv(plan_samples, (n + r) % 5)
    _plan_npv(PLAN_DEFAULT_SAMPLES, 0)
    t0 = time.perf_counter()
    await asyncio.gather(*(_one_session(n, url, rounds, timeout_s, latencies, errors, plan_samples, plan_latencies)
                           for n in range(sessions)))
    wall = time.perf_counter() - t0
    return {
        "url": url, "sessions": sessions, "rounds": rounds, "pages": ["serve", "train", "plan"],
        "plan": {"example": PLAN_EXAMPLE, "first_visit_samples": PLAN_DEFAULT_SAMPLES, "round_samples": plan_samples},
        "reruns": len(latencies), "errors": len(errors), "error_messages": errors[:20], "wall_s": round(wall, 2),
        "rerun_latency_s": _percentiles(latencies), "plan_rerun_latency_s": _percentiles(plan_latencies),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="an app already running (default: start one on a free loopback port)")
    ap.add_argument("--sessions", type=int, default=20, help="concurrent sessions (1-50; default 20)")
    ap.add_argument("--rounds", type=int, default=3, help="widget changes per page per session (1-20; default 3)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per rerun and for start-up (default 120)")
    ap.add_argument("--plan-samples", type=int, default=1000,
                    help="Monte Carlo samples of the Plan page's reruns (100-20,000; default 1,000)")
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 50 or not 1 <= args.rounds <= 20 or not 1 <= args.timeout <= 600:
        ap.error("--sessions in [1, 50], --rounds in [1, 20], --timeout in [1, 600]")
    if not 100 <= args.plan_samples <= 20_000:
        ap.error("--plan-samples in [100, 20000]")
    proc = None
    url = args.url
    try:
        if url is None:
            port = server.free_port()
            proc = server.start(port, pythonpath=str(ROOT / "src"))
            url = f"http://127.0.0.1:{port}"
        else:
            url = url.rstrip("/")
        if not url.startswith(("http://127.0.0.1", "http://localhost")):
            ap.error("--url must be on loopback")
        server.wait_healthy(url, args.timeout, proc)
        report = asyncio.run(asyncio.wait_for(_main(url, args.sessions, args.rounds, args.timeout, args.plan_samples),
                                              timeout=args.timeout * (3 + 3 * args.rounds)))
    finally:
        if proc is not None:
            server.stop(proc)
    print(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
