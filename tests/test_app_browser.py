"""End to end: `billshape app` serving on loopback, driven in Debian's headless Chromium by Playwright.

Never downloads a browser: Playwright is pointed at /usr/bin/chromium (Debian's ``chromium`` package; `.ci/run`
installs it). Skipped, with the reason, where that binary is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from billshape.app import server as app_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 90
WAIT_MS = 90_000  # first script run imports pandas/altair/pydantic: slow on a busy CI machine
# Set BILLSHAPE_SCREENSHOTS=DIR to keep the screenshots (docs/app.md describes them); else under tmp_path.
SHOTS_ENV = "BILLSHAPE_SCREENSHOTS"


@pytest.fixture
def server(tmp_path):
    """`billshape app --headless` on a free loopback port; always killed afterwards."""
    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":  # CI installs chromium (.ci/run): a missing one there is a failure
            pytest.fail(f"CI: {CHROMIUM} missing (.ci/run installs Debian's chromium)", pytrace=False)
        pytest.skip(f"{CHROMIUM} missing: install Debian's chromium package (apt-get install -y chromium)")
    port = app_server.free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = app_server.start(port, cwd=tmp_path, stdout=log, pythonpath=str(ROOT / "src"))
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            app_server.wait_healthy(url, START_TIMEOUT_S, proc)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}: {(tmp_path / 'server.log').read_text()[-2000:]}")
        yield url
    finally:
        app_server.stop(proc)
        log.close()


@pytest.fixture
def browser_page(tmp_path):
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1500})
        try:
            page = ctx.new_page()
            page.set_default_timeout(WAIT_MS)
            local = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
            page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
            page.outside_requests = outside
            yield page
        finally:
            ctx.close()


def metric(page, text: str):
    return page.locator('[data-testid="stMetricValue"]', has_text=text)


def shot(page, tmp_path, name: str, height: int | None = None) -> Path:
    """Screenshot the page (after charts have drawn) under tmp_path and, if asked, under $BILLSHAPE_SCREENSHOTS.

    ``height``: a taller window for a long page (Streamlit scrolls inside its own container, so a "full page"
    screenshot would stop at the window's height).
    """
    size = page.viewport_size
    if height:
        page.set_viewport_size({"width": size["width"], "height": height})
    page.locator("canvas, svg.marks").first.wait_for()
    page.wait_for_timeout(1500 if height else 800)
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path)
    if os.environ.get(SHOTS_ENV):
        Path(os.environ[SHOTS_ENV]).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=Path(os.environ[SHOTS_ENV]) / f"app-{name}.png")
    if height:
        page.set_viewport_size(size)
    assert path.stat().st_size > 20_000  # a rendered page, not a blank one
    return path


def test_change_input_see_result_change(server, browser_page, tmp_path):
    page = browser_page
    page.goto(server)
    # a new user sees seed 000's figures without typing anything
    metric(page, "94,080").wait_for()
    metric(page, "$235,200").first.wait_for()

    gpus = page.get_by_label("GPUs", exact=True)
    gpus.fill("560")
    gpus.press("Enter")
    metric(page, "188,160").wait_for()
    metric(page, "$470,400").first.wait_for()
    assert metric(page, "94,080").count() == 0
    shot(page, tmp_path, "train")

    # bad input: the library's one-line message, no traceback
    days = page.get_by_label("Days", exact=True)
    days.fill("0")
    days.press("Enter")
    alert = page.get_by_test_id("stAlert").filter(has_text="Days: got 0")  # its widget label, not --days
    alert.wait_for()
    assert "allowed: in (0, 40000]" in alert.inner_text()
    assert page.get_by_test_id("stException").count() == 0

    # another page: Serve; twice the GPUs for the same throughput doubles the cost per token
    page.get_by_test_id("stSidebarNav").get_by_text("Serve", exact=True).click()
    metric(page, "$0.3003").wait_for()
    serve_gpus = page.get_by_label("GPUs", exact=True)
    serve_gpus.fill("16")
    serve_gpus.press("Enter")
    metric(page, "$0.6006").wait_for()
    shot(page, tmp_path, "serve")

    # Build vs buy: the lines cross at 125 billion tokens; a higher API price moves the crossing nearer
    page.get_by_test_id("stSidebarNav").get_by_text("Build vs buy", exact=True).click()
    metric(page, "125 billion tokens").wait_for()
    api = page.get_by_label("API price p, USD per million tokens", exact=True)
    api.fill("2.30")
    api.press("Enter")
    metric(page, "50 billion tokens").wait_for()  # 100,000 / (2.30 - 0.30) per million
    shot(page, tmp_path, "build-vs-buy")

    assert page.outside_requests == []  # the app reaches no outside host


def nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()


def enter(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")


def test_decision_pages(server, browser_page, tmp_path):
    """Size, Capacity, Route, Build vs buy over time, and Serve's modelled throughput: one change each."""
    from billshape import serving
    from billshape.decide import build_vs_buy_horizon, capacity_plan, read_demand, size_model

    page = browser_page
    page.goto(server)
    metric(page, "94,080").wait_for()

    # Size opens on Sardana et al. Fig. 1 (13B reference, 2e12 inference tokens -> 6.97B, 17.4 % saved)
    nav(page, "Size")
    metric(page, "6.97B").wait_for()
    metric(page, "17.4%").wait_for()
    enter(page, "Lifetime inference tokens (trillions)", "10")
    ref = size_model(10e12, reference_params=13e9)
    metric(page, f"{ref.params / 1e9:,.3g}B").wait_for()
    shot(page, tmp_path, "size")

    # Capacity: the example week reserves 14 GPUs; a dearer on-demand price reserves more
    nav(page, "Capacity")
    metric(page, "$5,171").wait_for()
    enter(page, "On-demand, USD/GPU-hour", "2.5")
    week = read_demand(ROOT / "examples" / "demand_week.csv")[1]
    metric(page, f"${capacity_plan(week, 1.9, 2.5).total_usd:,.0f}").wait_for()
    shot(page, tmp_path, "capacity")

    # Route: FrugalGPT ladder at 0.845 picks gemini-1.5-flash; the cascade adds its quality
    nav(page, "Route")
    metric(page, "gemini-1.5-flash").wait_for()
    page.get_by_test_id("stCheckbox").filter(has_text="Cascade").locator("label").click()
    page.locator('[data-testid="stMetricLabel"]', has_text="Cascade quality").wait_for()
    shot(page, tmp_path, "route")

    # Build vs buy over time: LLMflation's 10x a year makes next year's answer "buy"
    nav(page, "Build vs buy")
    metric(page, "month 13").wait_for()
    trend = page.get_by_test_id("stSelectbox").filter(has_text="API price trend").locator("input")
    trend.click()
    trend.fill("a16z")
    trend.press("Enter")
    hz = build_vs_buy_horizon(1.10, 0.30, 100_000, 10e9, 24, api_price_annual_factor=0.1)
    metric(page, f"-${-hz.npv_saving_usd:,.0f}").wait_for()  # building loses money
    page.get_by_text("Over time", exact=True).scroll_into_view_if_needed()
    shot(page, tmp_path, "build-vs-buy-over-time")

    # Serve, modelled: Llama 3.1 70B fp8 on 2 H100; 4 GPUs double the tokens/s
    nav(page, "Serve")
    page.get_by_test_id("stButtonGroup").get_by_text("Model the throughput", exact=True).click()
    metric(page, "compute").wait_for()
    enter(page, "GPUs", "4")
    ref = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=4, precision="fp8", batch="max", price=2.5)
    metric(page, f"{round(ref.output_tokens_per_second):,}").wait_for()
    shot(page, tmp_path, "serve-model")

    assert page.get_by_test_id("stException").count() == 0
    assert page.outside_requests == []


def test_plan_and_usage_pages(server, browser_page, tmp_path):
    """Plan: pick seed 000's scenario, see its payback; Usage: the sample logs, then a what-if change."""
    from billshape import scenario, usage

    page = browser_page
    page.goto(server)
    metric(page, "94,080").wait_for()

    # Plan opens on the high-volume example (Monte Carlo); seed 000's scenario pays back in 2.352 months
    nav(page, "Plan")
    page.locator('[data-testid="stMetricLabel"]', has_text="Payback, P50").first.wait_for()
    pick = page.get_by_test_id("stSelectbox").filter(has_text="Scenario").locator("input")
    pick.click()
    pick.fill("Image start-up")
    pick.press("Enter")
    metric(page, "2.352").wait_for()
    ref = scenario.plan(scenario.examples_dir() / "seed000_image_startup.yaml")
    assert ref.summary["payback_month"]["p50"] == 2.352
    page.get_by_text("Download the HTML report").first.wait_for()
    shot(page, tmp_path, "plan", height=3600)

    # Usage opens on the sample logs: the same rows and total as the library's ingest
    nav(page, "Usage")
    db = str(tmp_path / "usage.duckdb")
    logs = ROOT / "examples" / "usage"
    res = usage.ingest([str(logs / n) for n in ("spans.otlp.json", "openai_usage.json", "requests.csv")], db,
                       mapping={"tenant": "customer"}, prices_csv=str(logs / "selfhosted_prices.csv"))
    metric(page, f"${res.total_usd:,.6f}").first.wait_for()
    assert metric(page, f"{res.rows_priced:,}").count() >= 1
    # what-if: turning the cache hit rate off leaves only the route (40 % of gpt-4o to gpt-4o-mini)
    page.get_by_test_id("stCheckbox").filter(has_text="Set the cache hit rate").locator("label").click()
    w = usage.whatif(db, ["gpt-4o-2024-08-06:0.4->gpt-4o-mini"], None, prices_csv=str(logs / "selfhosted_prices.csv"))
    metric(page, f"${w.whatif_usd:,.6f}").wait_for()
    shot(page, tmp_path, "usage", height=2400)

    assert page.get_by_test_id("stException").count() == 0
    assert page.outside_requests == []



def test_usage_page_draws_the_forecast_chart(server, browser_page, tmp_path):
    """Usage, Watch: the forecast band is drawn (a chart of real size) and its P50 is the library's."""
    from billshape import usage
    from billshape.app.views.usage import usd_exact
    from billshape.usage import forecast

    page = browser_page
    page.goto(server)
    nav(page, "Usage")
    db = str(tmp_path / "usage.duckdb")
    logs = ROOT / "examples" / "usage"
    usage.ingest([str(logs / n) for n in ("spans.otlp.json", "openai_usage.json", "requests.csv")], db,
                 mapping={"tenant": "customer"}, prices_csv=str(logs / "selfhosted_prices.csv"))
    fc = forecast.forecast(db, samples=1000)
    page.get_by_text("Month-end, P50").first.wait_for()
    metric(page, usd_exact(fc.total["p50"])).first.wait_for()
    chart = page.locator(".st-key-usage_forecast").locator("canvas, svg.marks").first
    chart.scroll_into_view_if_needed()
    chart.wait_for()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 150, box
    shot(page, tmp_path, "usage-watch", height=3200)
    assert page.get_by_test_id("stException").count() == 0
    assert page.outside_requests == []

# Every page's URL path (app/views/*.py URL), in menu order.
PAGE_PATHS = ["train", "serve", "build-vs-buy", "size", "capacity", "route", "plan", "usage"]
CLIPPED_JS = (ROOT / "tests" / "js" / "clipped_text.js").read_text()


def test_nothing_is_cut_off_at_1400_px(server, browser_page, tmp_path):
    """Metric cards, buttons and select boxes show their whole text in a 1400 px window: no "$159,591,..." and no
    "Model the throughpu" (a text is cut off when it overflows an ancestor that hides overflow, or ends in an
    ellipsis, or a select box's value is wider than its box)."""
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1400})
    cut: dict[str, list[str]] = {}
    for path in PAGE_PATHS:
        page.goto(f"{server}/{path}")
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        page.locator("canvas, svg.marks").first.wait_for()
        page.wait_for_timeout(1500)
        found = page.evaluate(CLIPPED_JS)
        if found:
            cut[path] = found
            page.screenshot(path=tmp_path / f"cut-{path}.png")
    assert cut == {}
    assert page.get_by_test_id("stException").count() == 0
