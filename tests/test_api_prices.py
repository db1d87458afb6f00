"""The one API-price look-up (billshape.api_prices): a UTC day's price, tiers, the provider/model form, and the
plan and the usage ledger reading the same price from it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import api_prices, plan
from billshape.errors import BillshapeInputError
from billshape.plan.prices import api_price

CHANGE = dt.date(2025, 12, 2)  # genai-prices 0.2.3: mistral ministral-8b-latest goes from $0.10/M to $0.15/M


def test_a_dated_price_change_is_priced_on_each_side_of_it():
    before = api_prices.quote("ministral-8b-latest", "mistral", CHANGE - dt.timedelta(days=1))
    after = api_prices.quote("ministral-8b-latest", "mistral", CHANGE)
    assert (before.input_mtok, before.output_mtok, before.cache_read_mtok) == (Decimal("0.1"), Decimal("0.1"), None)
    assert (after.input_mtok, after.output_mtok, after.cache_read_mtok) == (Decimal("0.15"), Decimal("0.15"), Decimal("0.015"))
    assert before.day == CHANGE - dt.timedelta(days=1) and after.day == CHANGE


@settings(max_examples=40, deadline=None)
@given(st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2027, 12, 31)))
def test_any_day_is_the_price_genai_prices_has_in_force_at_noon_utc(day):
    from genai_prices import data_snapshot

    _, info = data_snapshot.get_snapshot().find_provider_model("ministral-8b-latest", None, "mistral", None)
    expected = info.get_prices(dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone.utc))
    q = api_prices.quote("ministral-8b-latest", "mistral", day)
    assert q.input_mtok == expected.input_mtok and q.output_mtok == expected.output_mtok
    assert q.input_mtok == (Decimal("0.15") if day >= CHANGE else Decimal("0.1"))


def test_off_peak_hours_do_not_price_a_day():
    """deepseek-chat is half price from 16:30 to 00:30 UTC; a day is priced at noon: the standard price."""
    q = api_prices.quote("deepseek-chat", "deepseek", dt.date(2026, 6, 1))
    assert q.input_mtok == Decimal("0.27") and q.output_mtok == Decimal("1.1")


def test_one_tier_price_has_its_base_and_its_price_above_the_threshold():
    q = api_prices.quote("claude-sonnet-4-5", "anthropic", dt.date(2026, 12, 3))
    assert q.tier_start == 200_000
    assert (q.input_mtok, q.tier_input_mtok) == (Decimal(3), Decimal(6))
    assert (q.output_mtok, q.tier_output_mtok) == (Decimal(15), Decimal("22.5"))
    p = api_price("claude-sonnet-4-5", "anthropic", "serving.routes[0].api.model", dt.date(2026, 12, 3))
    assert (p.input, p.output) == (3.0, 15.0)  # a plan reads the base tier, and says so
    assert [a.name for a in p.assumptions][:2] == ["claude-sonnet-4-5 input price (base tier)",
                                                   "claude-sonnet-4-5 output price (base tier)"]


def test_a_tier_that_ends_is_priced_by_date():
    """claude-sonnet-4-6 loses its long-context tier on 2026-03-13 in genai-prices 0.2.3."""
    old = api_prices.quote("claude-sonnet-4-6", "anthropic", dt.date(2026, 3, 12))
    new = api_prices.quote("claude-sonnet-4-6", "anthropic", dt.date(2026, 3, 13))
    assert (old.tier_start, old.tier_input_mtok) == (200_000, Decimal(6))
    assert (new.tier_start, new.tier_input_mtok) == (None, None) and new.input_mtok == old.input_mtok


def test_several_tiers_are_refused_by_the_ledger_and_the_plan_alike():
    from billshape.usage.prices import price_for

    with pytest.raises(api_prices.ApiPriceMiss) as miss:
        api_prices.quote("qwen/qwen3-coder-flash", "openrouter")
    assert miss.value.kind == "tiers" and miss.value.found == "openrouter/qwen/qwen3-coder-flash"
    row = price_for("openrouter", "qwen/qwen3-coder-flash", dt.date(2026, 12, 3), {})
    assert row["price_error"] == "multi-tier price for openrouter/qwen/qwen3-coder-flash not supported"
    with pytest.raises(BillshapeInputError) as err:
        api_price("qwen/qwen3-coder-flash", "openrouter", "serving.routes[2].api.model")
    assert err.value.field == "serving.routes[2].api.model" and "several" in err.value.allowed


@pytest.mark.parametrize("model,provider", [("openai/gpt-4o", None), ("gpt-4o", "openai"), ("gpt-4o", None),
                                            ("OpenAI/GPT-4o", None)])
def test_provider_prefix_names_the_provider(model, provider):
    q = api_prices.quote(model, provider, dt.date(2026, 12, 3))
    assert (q.provider, q.model, q.input_mtok, q.output_mtok) == ("openai", "gpt-4o", Decimal("2.5"), Decimal(10))


def test_a_prefix_that_is_no_provider_stays_in_the_name():
    assert api_prices.split_provider("meta-llama/llama-3.1-70b", None) == ("meta-llama/llama-3.1-70b", None)
    assert api_prices.split_provider("openai/gpt-4o", "openrouter") == ("openai/gpt-4o", "openrouter")


def test_float_noise_past_nine_decimals_is_rounded_not_an_error():
    """genai-prices 0.2.3 lists 0.18000000000000002 $/M for this model; the ledger's unit is 1e-9 $/M."""
    q = api_prices.quote("Qwen/Qwen3-VL-8B-Instruct", "huggingface_together", dt.date(2026, 12, 3))
    assert q.input_mtok == Decimal("0.18") and q.input_mtok.as_tuple().exponent == -9


@pytest.mark.parametrize("model,provider,day", [
    ("gpt-4.1-mini", None, dt.date(2026, 12, 3)), ("openai/gpt-4o", None, dt.date(2026, 1, 1)),
    ("ministral-8b-latest", "mistral", CHANGE - dt.timedelta(days=1)), ("ministral-8b-latest", "mistral", CHANGE),
    ("claude-sonnet-4-5", "anthropic", dt.date(2026, 12, 3))])
def test_the_plan_and_the_ledger_read_the_same_price(model, provider, day):
    from billshape.usage.prices import price_for

    row = price_for(provider, model, day, {})
    p = api_price(model, provider, "model", day)
    assert row["price_model"] == f"{p.provider}/{p.model}"
    assert (float(row["input_mtok"]), float(row["output_mtok"])) == (p.input, p.output)
    cached = row["cache_read_mtok"] if row["cache_read_mtok"] is not None else row["input_mtok"]
    assert float(cached) == p.cached_input
    assert {a.as_of for a in p.assumptions} == {day.isoformat()}


def _scenario(**serving) -> dict:
    return {"horizon_months": 12, "discount_rate_annual": 0.1,
            "product": {"users_start": 100, "price_per_user_month_usd": 20, "requests_per_user_month": 100,
                        "input_tokens_per_request": 1000, "output_tokens_per_request": 200},
            "serving": {"routes": [{"share": 1, "api": {"model": "ministral-8b-latest", "provider": "mistral"}}],
                        **serving}}


def _date_rows(p):
    return {a.name: a for a in p.assumptions if a.name == "serving.api_prices_as_of" or "price" in a.name}


def test_the_plan_states_the_date_it_priced_at():
    p = plan.load(_scenario(api_prices_as_of="2025-12-01"))
    rows = _date_rows(p)
    assert rows["serving.api_prices_as_of"].value == "2025-12-01"
    assert rows["serving.api_prices_as_of"].source == "user input (scenario)"
    assert rows["ministral-8b-latest input price"].value == 0.1
    assert rows["ministral-8b-latest input price"].as_of == "2025-12-01"
    later = _date_rows(plan.load(_scenario(api_prices_as_of="2025-12-02")))
    assert later["ministral-8b-latest input price"].value == 0.15  # the date moves the plan's price


def test_a_yaml_date_is_read_as_a_date():
    text = yaml.safe_dump(_scenario()).replace("serving:\n", "serving:\n  api_prices_as_of: 2025-12-01\n", 1)
    assert "api_prices_as_of: 2025-12-01\n" in text
    rows = _date_rows(plan.load(text))
    assert rows["ministral-8b-latest input price"].as_of == "2025-12-01"
    assert rows["serving.api_prices_as_of"].source == "user input (scenario.yaml)"


def test_without_a_date_the_plan_states_the_shipped_default():
    rows = _date_rows(plan.load(_scenario()))
    default = api_prices.default_day().isoformat()
    row = rows["serving.api_prices_as_of"]
    assert (row.value, row.as_of) == (default, default) and "data/api_prices_as_of.csv" in row.source
    assert rows["ministral-8b-latest input price"].as_of == default


def test_today_is_priced_at_the_utc_date_of_the_run():
    rows = _date_rows(plan.load(_scenario(api_prices_as_of="today")))
    today = dt.datetime.now(tz=dt.timezone.utc).date().isoformat()
    assert rows["serving.api_prices_as_of"].value == today and rows["serving.api_prices_as_of"].source.endswith("today")
    assert rows["ministral-8b-latest input price"].as_of == today


def test_no_date_row_when_no_route_is_looked_up():
    sc = _scenario()
    sc["serving"]["routes"][0]["api"].update(usd_per_million_input_tokens=1, usd_per_million_output_tokens=2)
    assert "serving.api_prices_as_of" not in {a.name for a in plan.load(sc).assumptions}


@pytest.mark.parametrize("value", ["tomorrow", "2025-13-01", "2025-12-1", 20251201, "2025-12-01T10:00:00",
                                   dt.datetime(2025, 12, 1, 10)])
def test_a_bad_date_names_the_yaml_path(value):
    with pytest.raises(BillshapeInputError) as err:
        plan.load(_scenario(api_prices_as_of=value))
    assert err.value.field == "serving.api_prices_as_of" and err.value.allowed == "an ISO date (YYYY-MM-DD) or 'today'"


def test_errors_name_the_callers_field_with_hints():
    with pytest.raises(BillshapeInputError) as err:
        api_price("gpt-4o-mni", None, "serving.routes[1].api.model")
    assert err.value.field == "serving.routes[1].api.model" and "gpt-4o-mini" in err.value.hint
    with pytest.raises(BillshapeInputError) as err:
        api_price("gpt-4o", "opnai", "serving.routes[1].api.model")
    assert err.value.field == "serving.routes[1].api.provider" and err.value.value == "opnai"
    assert "openai" in err.value.hint
    sc = _scenario()
    sc["serving"]["routes"][0]["api"] = {"model": "mistral/ministral-8b-lates"}
    with pytest.raises(BillshapeInputError) as err:
        plan.load(sc)
    assert err.value.field == "serving.routes[0].api.model" and "ministral-8b-latest" in err.value.hint


def test_the_ledger_quarantines_an_unknown_name_in_its_own_words():
    from billshape.usage.prices import price_for

    row = price_for("selfhosted", "llama-3.1-8b-ours", dt.date(2026, 1, 1), {})
    assert row["price_error"] == "no price for model llama-3.1-8b-ours (provider selfhosted)"
    assert price_for(None, "no-such-model-xyz", dt.date(2026, 1, 1), {})["price_error"] == "no price for model no-such-model-xyz"


def test_the_look_up_and_the_plan_need_no_pyarrow():
    code = ("import sys, datetime; sys.modules['pyarrow'] = None\n"
            "from billshape.plan.prices import api_price\n"
            "print(api_price('gpt-4.1-mini', day=datetime.date(2026, 12, 3)).input)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.4"
