"""The rate table and the integer cost path (billshape.usage.rates) against the decimal reference formula
(engine.cost_columns: tokens x tiered price in 128-bit decimals, rounded half away from zero), and the integer
rounding against Python's exact decimals."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import ibis
import pytest
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billshape.usage import engine as E
from billshape.usage import rates as RT
from billshape.usage.prices import tier_rows
from billshape.usage.schema import COST_FIELDS, PRICES, UNIT_COST_FIELDS, UNIT_FIELDS

DAY = dt.date(2025, 10, 1)
FIELDS = (*COST_FIELDS, *UNIT_COST_FIELDS)
PRICE_COLS = [f.name for f in PRICES if pa.types.is_decimal(f.type)]
#: tiers of the catalog (with their providers and models), an unknown tier and no tier
TIERS = sorted({(r.provider, r.model, r.tier) for r in tier_rows()}) + [("openai", "", "weird"), ("", "", None)]


def _con():
    return ibis.duckdb.connect()


def _register(con, name: str, t: pa.Table):
    con.con.register(name, t)
    return con.table(name)


def price(max_whole: int = 1000):
    return st.one_of(st.none(), st.decimals(min_value=0, max_value=max_whole, places=9, allow_nan=False, allow_infinity=False))


@st.composite
def rows(draw):
    """A stage row joined to a price row: any token split the readers accept, any prices (some missing), any tier."""
    prov, model, tier = draw(st.sampled_from(TIERS))
    model = model or draw(st.sampled_from(["gpt-4o", "gpt-5", "claude-x", "m"]))
    prov = prov or draw(st.sampled_from(["openai", "anthropic", "google", None]))
    if tier is not None and draw(st.booleans()):
        tier = tier.upper()  # matched lower-cased
    # the pricing key (genai-prices' normalised provider/model): absent, the logged name, or the key of a logged name
    # that differs from the catalog's id (a dated snapshot, a provider the log did not name): the tier rows match on
    # either the logged name or the key, on both paths
    key = draw(st.sampled_from([None, "same", "dated", "unnamed provider"]))
    price_model = None if key is None else f"{prov or 'openai'}/{model}"
    if key == "dated":
        model = model + "-2024-08-06"
    elif key == "unnamed provider":
        prov = None
    big = st.integers(0, 10**12)
    inp = draw(st.one_of(st.integers(0, 300_000), big))
    cr = draw(st.integers(0, inp))
    cw = draw(st.integers(0, inp - cr))
    w1h = draw(st.one_of(st.none(), st.integers(0, cw), st.just(cw)))  # 1-hour writes: a part of the cache writes
    img = draw(st.integers(0, inp - cr - cw))
    aud = draw(st.integers(0, inp - cr - cw - img))
    out = draw(st.one_of(st.integers(0, 100_000), big))
    oimg = draw(st.integers(0, out))
    oaud = draw(st.integers(0, out - oimg))
    rec = {"provider": prov, "model": model, "price_model": price_model, "service_tier": tier, "requests": draw(st.sampled_from([1, 1, 2, 10**6])),
           "input_tokens": inp, "cache_read_tokens": cr, "cache_write_tokens": cw, "output_tokens": out,
           "input_image_tokens": img or None, "output_image_tokens": oimg, "input_audio_tokens": aud,
           "output_audio_tokens": oaud or None, "images_generated": draw(st.integers(0, 10**6)),
           "seconds_generated": draw(st.integers(0, 10**6)), "web_search_calls": draw(st.integers(0, 10**6)),
           "cache_write_1h_tokens": w1h}
    # per-unit prices up to the readers' cap ($1,000 per unit), x any tier multiplier
    # per-request prices below $4 ($4,000 per thousand): x the largest tier multiplier (2) stays under the rate
    # table's bound for a unit the readers take up to 1e12 of a row (rates.MAX_RATE_HI, $9)
    p = {c: draw(price(1000 if c.startswith("usd_per") else 4000 if c == "requests_kpr" else 10**5)) for c in PRICE_COLS}
    p["input_mtok"] = draw(st.decimals(min_value=0, max_value=10**5, places=9, allow_nan=False, allow_infinity=False))
    p["tier_start"] = draw(st.one_of(st.none(), st.integers(0, 300_000)))
    return rec, p


def _table(records: list[dict], schema_extra: list[tuple[str, pa.DataType]]) -> pa.Table:
    schema = pa.schema([("provider", pa.string()), ("provider_key", pa.string()), ("model", pa.string()),
                        ("price_model", pa.string()), ("service_tier", pa.string()),
                        *[(f, pa.int64()) for f in ("requests", "input_tokens", "cache_read_tokens", "cache_write_tokens",
                                                    "output_tokens", *UNIT_FIELDS)], *schema_extra])
    return pa.Table.from_pylist(records, schema=schema)


def reference_and_rates(pairs) -> tuple[list[dict], list[dict]]:
    """The cost components of each row by the decimal reference (cost_columns) and by the rate path."""
    price_schema = [(f.name, f.type) for f in PRICES if f.name in (*PRICE_COLS, "tier_start")]
    ref = _table([{**rec, "provider_key": rec["provider"] or "", **p} for rec, p in pairs], price_schema)
    fast = []
    for rec, p in pairs:
        prow = {f.name: None for f in PRICES}
        prow.update(p, provider_key=rec["provider"] or "", model=rec["model"], price_model=rec.get("price_model"), day=DAY)
        rt = RT.rate_table(pa.Table.from_pylist([prow], schema=PRICES), [(rec["provider"], rec["model"], DAY, rec["service_tier"])])
        r = rt.to_pylist()[0]
        fast.append({**rec, "provider_key": rec["provider"] or "", "tier_start": p["tier_start"], "tier_known": r["tier_known"],
                     **{c: r[c] for c in rt.column_names if c.startswith("r_")}})
    fast_t = _table(fast, [("tier_start", pa.int64()), ("tier_known", pa.bool_()),
                           *[(c, pa.int64()) for c in RT.RATES.names if c.startswith("r_")]])
    con = _con()
    a = _register(con, "ref", ref)
    b = _register(con, "fast", fast_t)
    out_a = a.select(**E.cost_columns(a), known=E.known_tier(a)).to_pyarrow().to_pylist()
    out_b = b.select(**RT.rate_costs(b), known=b.tier_known).to_pyarrow().to_pylist()
    return out_a, out_b


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(rows(), min_size=1, max_size=25))
def test_rate_path_equals_the_decimal_reference(pairs):
    ref, fast = reference_and_rates(pairs)
    assert fast == ref


def test_rate_path_examples_that_round():
    """Half a nano-dollar, a 0.5 multiplier on an odd price, a long-context row, per-unit prices: each component
    equal to the reference, and the reference to a hand computation."""
    p = {c: None for c in PRICE_COLS} | {"input_mtok": Decimal("0.000000001"), "output_mtok": Decimal("2.500000001"),
                                         "tier_start": 200_000, "tier_input_mtok": Decimal("6.000000003"),
                                         "usd_per_image": Decimal("0.039"), "requests_kpr": Decimal("0.000000003")}
    base = {"requests": 1, "cache_read_tokens": 0, "cache_write_tokens": 0, "input_image_tokens": 0,
            "output_image_tokens": 0, "input_audio_tokens": 0, "output_audio_tokens": 0, "images_generated": 3,
            "seconds_generated": 0, "web_search_calls": 0}
    pairs = [({**base, "requests": 2, "provider": "openai", "model": "gpt-4o", "service_tier": "batch", "input_tokens": 500_000_000,
               "output_tokens": 3}, p),
             ({**base, "provider": "openai", "model": "gpt-4o", "service_tier": None, "input_tokens": 250_001,
               "output_tokens": 7}, p)]
    ref, fast = reference_and_rates(pairs)
    assert fast == ref
    half = lambda x: int(Decimal(x).to_integral_value(rounding=ROUND_HALF_UP))  # noqa: E731
    # batch: input 1e-9 x 0.5 = 5e-10 -> 1e-9 (half away from zero) per token; the long-context input price
    # applies to the second row only (a single request over tier_start; the first is two requests)
    assert fast[0]["usd_micro_input"] == half(Decimal(500_000_000) * Decimal("0.000000001"))
    assert fast[1]["usd_micro_input"] == half(Decimal(250_001) * Decimal("6.000000003"))
    assert fast[0]["usd_micro_images"] == 3 * half(Decimal("0.0195") * 10**6)
    assert fast[0]["usd_micro_output"] == half(3 * Decimal("1.250000001"))


def test_one_hour_cache_writes_at_their_rate_on_both_paths():
    """1-hour writes at the price table's 1-hour price (x the cache_write tier multiplier; the long-context 1-hour
    price for a single request over tier_start), the other writes at the cache-write price, both in
    usd_micro_cache_write; no 1-hour price: the cache-write price. Each path equal to a hand computation."""
    p = {c: None for c in PRICE_COLS} | {"input_mtok": Decimal("3"), "output_mtok": Decimal("15"),
                                         "cache_write_mtok": Decimal("3.75"), "cache_write_1h_mtok": Decimal("6"),
                                         "tier_start": 200_000, "tier_input_mtok": Decimal("6"),
                                         "tier_cache_write_mtok": Decimal("7.5"), "tier_cache_write_1h_mtok": Decimal("12.000000001")}
    base = {"requests": 1, "cache_read_tokens": 0, "output_tokens": 0, "input_image_tokens": 0, "output_image_tokens": 0,
            "input_audio_tokens": 0, "output_audio_tokens": 0, "images_generated": 0, "seconds_generated": 0,
            "web_search_calls": 0, "provider": "anthropic", "model": "claude-x"}
    rows_ = [{**base, "service_tier": None, "input_tokens": 5_000, "cache_write_tokens": 3_000, "cache_write_1h_tokens": 2_000},
             {**base, "service_tier": "batch", "input_tokens": 5_000, "cache_write_tokens": 3_001, "cache_write_1h_tokens": 2_001},
             {**base, "service_tier": None, "input_tokens": 300_000, "cache_write_tokens": 1_500, "cache_write_1h_tokens": 1_499},
             {**base, "service_tier": None, "input_tokens": 5_000, "cache_write_tokens": 3_000, "cache_write_1h_tokens": None}]
    ref, fast = reference_and_rates([(r, p) for r in rows_])
    assert fast == ref
    half = lambda x: int(Decimal(x).to_integral_value(rounding=ROUND_HALF_UP))  # noqa: E731
    assert [f["usd_micro_cache_write"] for f in fast] == [
        half(1_000 * Decimal("3.75")) + half(2_000 * Decimal("6")),
        half(1_000 * Decimal("1.875")) + half(2_001 * Decimal("3")),  # Anthropic batch: every price x 0.5
        half(1 * Decimal("7.5")) + half(1_499 * Decimal("12.000000001")),  # long context: the tier's 1-hour price
        half(3_000 * Decimal("3.75")),
    ]
    # without a 1-hour price the 1-hour writes are priced as cache writes (each TTL still rounded on its own, as
    # the invoice's two lines: 1 x 7.5 -> 8, 1,499 x 7.5 = 11,242.5 -> 11,243)
    p2 = p | {"cache_write_1h_mtok": None, "tier_cache_write_1h_mtok": None}
    ref2, fast2 = reference_and_rates([(rows_[0], p2), (rows_[2], p2)])
    assert fast2 == ref2
    assert [f["usd_micro_cache_write"] for f in fast2] == [half(1_000 * Decimal("3.75")) + half(2_000 * Decimal("3.75")),
                                                           half(Decimal("7.5")) + half(1_499 * Decimal("7.5"))]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(0, RT.FAST_UNITS + 10), st.integers(-10**12, 10**12)), st.integers(0, RT.MAX_RATE_HI), st.integers(0, 10**9 - 1)), min_size=1, max_size=50))
def test_round_units_is_exact(values):
    """units x (hi + lo / 1e9) rounded half away from zero, in 64-bit integers, equals the exact decimal result, for
    any row the readers accept (|units| <= 1e12) at any rate the rate table takes (hi <= MAX_RATE_HI)."""
    values = values + [(10**12, RT.MAX_RATE_HI, 10**9 - 1), (-10**12, RT.MAX_RATE_HI, 10**9 - 1),  # the corners
                       (10**9, RT.MAX_COUNT_RATE_HI, 10**9 - 1)]
    t = pa.table({"u": [v[0] for v in values], "hi": [v[1] for v in values], "lo": [v[2] for v in values]})
    con = _con()
    x = _register(con, "v", t)
    got = x.select(m=RT.round_units(x.u, x.hi, x.lo)).to_pyarrow().column("m").to_pylist()
    want = []
    for u, hi, lo in values:
        exact = Decimal(u) * (Decimal(hi) + Decimal(lo) / Decimal(10**9))
        want.append(int(exact.to_integral_value(rounding=ROUND_HALF_UP)))
    assert got == want


def test_rate_table_one_row_per_key():
    """A null and an empty provider are one price key: the rate table has one row for them (a second would
    double the joined rows)."""
    prow = {f.name: None for f in PRICES} | {"provider_key": "", "model": "m", "day": DAY, "input_mtok": Decimal(1),
                                             "output_mtok": Decimal(2)}
    rt = RT.rate_table(pa.Table.from_pylist([prow], schema=PRICES), [(None, "m", DAY, None), ("", "m", DAY, None),
                                                                      (None, "m", DAY, "batch")])
    assert rt.num_rows == 2 and rt.column("service_tier").to_pylist() == [None, "batch"]
    assert rt.column("r_input_hi").to_pylist() == [1, 1] and rt.column("r_output_hi").to_pylist() == [2, 2]


def test_rate_table_refuses_a_rate_the_integer_costs_cannot_hold():
    """A price above $9 per token (9e12 dollars per million tokens) would overflow 64-bit micro-dollars at the
    readers' largest row: the rate table refuses it, naming the model and the rate, instead of overflowing."""
    from billshape.errors import BillshapeInputError

    prow = {f.name: None for f in PRICES} | {"provider_key": "", "model": "m", "day": DAY, "input_mtok": Decimal(1),
                                             "output_mtok": Decimal(9_000_001)}
    with pytest.raises(BillshapeInputError, match=r"price of m \(output"):
        RT.rate_table(pa.Table.from_pylist([prow], schema=PRICES), [(None, "m", DAY, None)])
    prow["output_mtok"] = Decimal(9_000_000)
    assert RT.rate_table(pa.Table.from_pylist([prow], schema=PRICES), [(None, "m", DAY, None)]).num_rows == 1
