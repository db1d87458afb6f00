"""Generated ledgers for ``usage forecast|check|anomalies`` with known answers: a known trend and weekly season,
injected spikes, a budget crossed on a known day. One CSV row per customer and day (``requests`` aggregated),
priced as gpt-4o-mini (USD 0.15 / 0.60 per million input / output tokens), so each day's cost is known exactly."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np

START = dt.date(2025, 1, 1)
IN_USD, OUT_USD = 0.15e-6, 0.60e-6  # gpt-4o-mini, USD per token
HEADER = ["request_id", "timestamp", "provider", "model", "customer", "feature", "requests", "input_tokens", "output_tokens"]


def daily_rows(days: int, customers: int = 8, seed: int = 0, spikes: dict | None = None, trend: float = 0.004,
               weekend: float = 0.6, noise: float = 0.05) -> list[dict]:
    """Rows (day, customer, requests, tokens): requests ~ 1000 x (1 + trend x day) x weekday factor x noise;
    ``spikes``: ``{(customer, day): "cost" | "tokens"}``: x3 requests, or x4 tokens per request that day."""
    rng = np.random.default_rng(seed)
    spikes = spikes or {}
    rows = []
    for c in range(customers):
        scale = 1 + 0.5 * c
        for d in range(days):
            day = START + dt.timedelta(days=d)
            wk = weekend if day.weekday() >= 5 else 1.0
            req = max(int(round(1000 * scale * (1 + trend * d) * wk * (1 + noise * rng.standard_normal()))), 1)
            tin, tout = 2000 * (1 + 0.03 * rng.standard_normal()), 300 * (1 + 0.03 * rng.standard_normal())
            kind = spikes.get((c, d))
            if kind == "cost":
                req *= 3
            elif kind == "tokens":
                tin, tout = 4 * tin, 4 * tout
            rows.append({"day": day, "customer": f"c{c}", "requests": req, "input_tokens": int(req * tin),
                         "output_tokens": int(req * tout)})
    return rows


def usd(row: dict) -> float:
    return row["input_tokens"] * IN_USD + row["output_tokens"] * OUT_USD


def write_csv(path, rows: list[dict]) -> str:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i, r in enumerate(rows):
            w.writerow([f"w{i}", f"{r['day'].isoformat()}T12:00:00Z", "openai", "gpt-4o-mini", r["customer"], "chat",
                        r["requests"], r["input_tokens"], r["output_tokens"]])
    return str(path)


def series(rows: list[dict]) -> tuple[list, dict]:
    """The rows as :func:`billshape.usage.forecast.load_series` returns them (exact float USD)."""
    days = sorted({r["day"] for r in rows})
    idx = {d: i for i, d in enumerate(days)}
    groups: dict = {}
    for r in rows:
        g = groups.setdefault(r["customer"], {f: np.zeros(len(days)) for f in
                                              ("usd", "requests", "input_tokens", "output_tokens", "users")})
        i = idx[r["day"]]
        g["usd"][i] += usd(r)
        for f in ("requests", "input_tokens", "output_tokens"):
            g[f][i] += r[f]
    return days, groups
