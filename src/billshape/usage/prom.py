r"""Prometheus scrapes: read text exposition (a saved scrape or a loopback endpoint), counter rates with resets.

A *scrape* is one read of a ``/metrics`` page (vLLM, SGLang, DCGM exporter ...). Rates need two or more scrapes
of the same counter over a window. Each series (a metric name and its labels) is taken on its own:

* its times are the samples' own timestamps (the exposition format's optional milliseconds since the epoch)
  where every scrape of the series carries one; otherwise the scrapes that hold the series are taken as evenly
  spaced over ``window_seconds`` (first to last scrape);
* its increase is the sum of the steps between consecutive scrapes, a step that goes down being a counter reset
  (the process restarted and counted from zero), which adds the new value, as Prometheus's ``increase()`` does
  [1]_: :math:`\Delta = \sum_i (v_{i+1} - v_i \text{ if } v_{i+1} \ge v_i \text{ else } v_{i+1})`;
* its rate is :math:`\Delta / (t_{last} - t_{first})`; a metric's rate is the sum over its series.

Parsing uses prometheus-client's text parser (``prometheus_client.parser.text_string_to_metric_families``),
imported when a scrape is read.

References
----------
.. [1] Prometheus documentation, "Query functions: increase(), rate()" (counter resets),
       https://prometheus.io/docs/prometheus/latest/querying/functions/
.. [2] Prometheus documentation, "Exposition formats" (text format, sample timestamps in ms),
       https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from billshape.errors import BillshapeInputError

#: the largest scrape read (a /metrics page is kilobytes; a GPU node's DCGM page well under a megabyte)
MAX_SCRAPE_BYTES = 32 * 2**20
#: hosts a URL scrape may name: the loopback interface only (billshape never reaches beyond this machine)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: seconds to wait for a loopback endpoint
URL_TIMEOUT_SECONDS = 10.0

LabelKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    """One sample of a scrape: the sample's name (``vllm:prompt_tokens_total``), labels, value and timestamp
    [s since the epoch] or None."""

    name: str
    labels: LabelKey
    value: float
    timestamp: float | None = None


@dataclass(frozen=True)
class Scrape:
    """A parsed scrape: where it came from and its samples."""

    source: str
    samples: tuple[Sample, ...] = field(default=())

    def names(self) -> set[str]:
        return {s.name for s in self.samples}

    def series(self, name: str) -> dict[LabelKey, Sample]:
        """The samples named ``name``, by their labels (the last one wins if a page repeats a series)."""
        return {s.labels: s for s in self.samples if s.name == name}


def parse_scrape(text: str, source: str = "<text>") -> Scrape:
    """Parse Prometheus text exposition into a :class:`Scrape` (error names ``metrics`` and ``source``); samples
    whose value is NaN or infinite are left out."""
    from billshape._extras import require

    parser = require("usage", "prometheus_client.parser", "reading Prometheus metrics")
    try:
        samples = tuple(Sample(s.name, tuple(sorted(s.labels.items())), float(s.value),
                               None if s.timestamp is None else float(s.timestamp))
                        for fam in parser.text_string_to_metric_families(text) for s in fam.samples
                        if math.isfinite(float(s.value)))  # NaN/Inf samples (allowed by the format) carry no count
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise BillshapeInputError("metrics", source, "Prometheus text exposition (a saved /metrics scrape)",
                                  str(exc)[:200] or type(exc).__name__) from None
    if not samples:
        raise BillshapeInputError("metrics", source, "a Prometheus scrape with at least one sample", "no samples found")
    return Scrape(source, samples)


def check_loopback(url: str) -> str:
    """The URL if its scheme is http(s) and its host is loopback (127.0.0.1, localhost, ::1), else an error."""
    from urllib.parse import urlsplit

    allowed = "a scrape file, or an http(s) URL on loopback (127.0.0.1, localhost or [::1])"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:
        raise BillshapeInputError("metrics", url, allowed, str(exc)) from None
    if parts.scheme not in ("http", "https") or not host:
        raise BillshapeInputError("metrics", url, allowed)
    ok = host.lower() in LOOPBACK_HOSTS
    if not ok:
        try:
            ok = ipaddress.ip_address(host) in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
        except ValueError:
            ok = False
    if not ok:
        raise BillshapeInputError("metrics", url, allowed, f"host {host} is not loopback: scrape it where it runs, "
                                  "save the page (curl URL > scrape.prom) and pass the file")
    return url


def _fetch(url: str) -> str:
    import urllib.error
    import urllib.request

    check_loopback(url)
    req = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(req, timeout=URL_TIMEOUT_SECONDS) as resp:
            raw = resp.read(MAX_SCRAPE_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BillshapeInputError("metrics", url, "a reachable loopback /metrics endpoint",
                                  str(getattr(exc, "reason", exc))[:200]) from None
    return _decode(raw, url)


def _decode(raw: bytes, source: str) -> str:
    if len(raw) > MAX_SCRAPE_BYTES:
        raise BillshapeInputError("metrics", source, f"a scrape of at most {MAX_SCRAPE_BYTES // 2**20} MB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BillshapeInputError("metrics", source, "UTF-8 Prometheus text exposition",
                                  f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def read_scrape(source: str | os.PathLike) -> Scrape:
    """Read one scrape: a file path or an http(s) URL on loopback (any other host: an error naming ``metrics``)."""
    text_source = os.fspath(source)
    if "://" in text_source:
        return parse_scrape(_fetch(text_source), text_source)
    try:
        with open(text_source, "rb") as f:
            raw = f.read(MAX_SCRAPE_BYTES + 1)
    except OSError as exc:
        raise BillshapeInputError("metrics", text_source, "a readable scrape file or a loopback URL",
                                  type(exc).__name__) from None
    return parse_scrape(_decode(raw, text_source), text_source)


def counter_increase(values: Sequence[float] | np.ndarray) -> tuple[float, int]:
    """The increase of a counter sampled in order, and the number of resets (a step that goes down).

    Parameters
    ----------
    values : array_like
        The counter's values at consecutive scrapes [count].

    Returns
    -------
    (increase, resets) : (float, int)
        Sum of the steps, a reset step adding the value after it (the counter restarted from zero).
    """
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return 0.0, 0
    step = np.diff(v)
    reset = step < 0
    return float(np.where(reset, v[1:], step).sum()), int(reset.sum())


@dataclass(frozen=True)
class Rate:
    """A counter's rate over the window: the increase [count], the seconds it spans, the rate [count/s] (summed
    over series), the number of series and of resets, and how the times were known (``timestamps``/``window``)."""

    name: str
    increase: float
    seconds: float
    per_second: float
    series: int
    resets: int
    timing: str


def scrape_times(n: int, window_seconds: float | None, name: str) -> np.ndarray:
    """Times [s] of ``n`` scrapes evenly spaced over ``window_seconds`` (the first at 0)."""
    if window_seconds is None:
        raise BillshapeInputError("window_seconds", None, "> 0: the seconds between the first and the last scrape "
                                  f"(the samples of {name} carry no timestamps)")
    return np.linspace(0.0, float(window_seconds), n)


def counter_rate(scrapes: Sequence[Scrape], name: str, window_seconds: float | None = None) -> Rate | None:
    """The rate of counter ``name`` over ``scrapes`` (in order), or None where no scrape holds it.

    A series is timed by its samples' timestamps where all of its samples carry one, else by
    :func:`scrape_times` over the scrapes that hold it; a series in one scrape only adds nothing. Errors
    name ``metrics`` (time going backwards, one scrape only) or ``window_seconds`` (needed, not given).
    """
    held = [s for s in scrapes if name in s.names()]
    if not held:
        return None
    if len(held) < 2:
        raise BillshapeInputError("metrics", held[0].source, f"two or more scrapes holding {name} (a rate needs two)",
                                  "repeat --metrics with a later scrape of the same endpoint")
    keys: list[LabelKey] = []
    for s in held:
        keys.extend(k for k in s.series(name) if k not in keys)
    total_inc = total_rate = 0.0
    seconds = 0.0
    resets = n_series = 0
    timings = set()
    for key in keys:
        pts = [(i, s.series(name)[key]) for i, s in enumerate(held) if key in s.series(name)]
        if len(pts) < 2:
            continue
        values = [p.value for _, p in pts]
        if all(p.timestamp is not None for _, p in pts):
            t = np.array([p.timestamp for _, p in pts])
            timings.add("timestamps")
        else:
            t = scrape_times(len(held), window_seconds, name)[[i for i, _ in pts]]
            timings.add("window")
        span = float(t[-1] - t[0])
        if not np.all(np.diff(t) > 0):
            raise BillshapeInputError("metrics", held[0].source, f"scrapes in time order (each later than the last) for {name}",
                                      "pass --metrics in the order the scrapes were taken")
        inc, r = counter_increase(values)
        total_inc += inc
        total_rate += inc / span
        seconds = max(seconds, span)
        resets += r
        n_series += 1
    if n_series == 0:
        return None
    return Rate(name, total_inc, seconds, total_rate, n_series, resets, "+".join(sorted(timings)))


def gauge_sums(scrapes: Iterable[Scrape], name: str) -> np.ndarray:
    """A gauge summed over its series in each scrape that holds it [the gauge's unit], in scrape order."""
    return np.array([sum(x.value for x in s.series(name).values()) for s in scrapes if name in s.names()], dtype=float)


def gauge_means(scrapes: Iterable[Scrape], name: str) -> np.ndarray:
    """A gauge averaged over its series in each scrape that holds it, in scrape order."""
    return np.array([float(np.mean([x.value for x in s.series(name).values()])) for s in scrapes if name in s.names()],
                    dtype=float)


def label_values(scrapes: Iterable[Scrape], name: str, label: str) -> list[str]:
    """The distinct values of ``label`` on the series of ``name`` (first seen first)."""
    out: list[str] = []
    for s in scrapes:
        for key in s.series(name):
            v = dict(key).get(label)
            if v is not None and v not in out:
                out.append(v)
    return out


def series_count(scrapes: Iterable[Scrape], name: str) -> int:
    """The most series of ``name`` any one scrape holds (e.g. GPUs on a DCGM page)."""
    return max((len(s.series(name)) for s in scrapes), default=0)
