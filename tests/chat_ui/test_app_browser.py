"""The agents' app in a real Chromium: ask for a customer, go through every tab."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat_ui._auth import User, Users, hash_password

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(url: str, **options) -> Iterator[str]:
    from chat_ui import serve

    port = _free_port()
    app = serve(url, port=port, block=False, **options)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture
def app_url(
    serving_url: str, sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    docs = tmp_path / "data_docs"
    docs.mkdir()
    (docs / "index.html").write_text("<h1>Data Docs of the sample</h1>")
    sample.facts["data_docs"] = str(docs / "index.html")
    sample.publish(serving_url)
    yield from _serve(serving_url)


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _assert_not_blank(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 16, f"{path.name} looks blank"


def _keep(screenshots: list[Path]) -> None:
    """Copy the screenshots where SPARKIFY_SCREENSHOTS says (the README's)."""
    if os.environ.get("SPARKIFY_SCREENSHOTS"):
        target = Path(os.environ["SPARKIFY_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        for path in screenshots:
            shutil.copy(path, target / path.name)


def _assert_answer_starts_in_view(page, first_line: str) -> None:
    """The chat's last answer shows from ``first_line``, below the panel's label."""
    line = page.locator("#answers .bot-row").last.get_by_text(first_line)
    panel = page.locator("#answers .bubble-wrap")
    label = page.locator("#answers label").first

    def placed() -> tuple[float, float, float, float]:
        """The line's top and bottom, and the top and bottom of what the chat shows."""
        shown = line.bounding_box()
        area = panel.bounding_box()
        over = label.bounding_box()
        return (
            shown["y"],
            shown["y"] + shown["height"],
            over["y"] + over["height"],
            area["y"] + area["height"],
        )

    # The app scrolls a frame or two after the answer is drawn.
    deadline = time.monotonic() + 5
    top, bottom, seen_from, seen_to = placed()
    while not seen_from <= top < bottom <= seen_to and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        top, bottom, seen_from, seen_to = placed()
    assert seen_from <= top < bottom <= seen_to, (
        f"{first_line!r} is at y {top:.0f} to {bottom:.0f}; the chat shows "
        f"{seen_from:.0f} to {seen_to:.0f}"
    )


def test_app_answers_a_customer_and_shows_every_tab(app_url, browser, tmp_path):
    from playwright.sync_api import Request, expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def note_outside(request: Request) -> None:
        if not request.url.startswith(app_url) and not request.url.startswith("data:"):
            outside.append(request.url)

    page.on("request", note_outside)
    page.goto(app_url)
    expect(page.get_by_text("Sparkify customer assistant").first).to_be_visible()
    expect(page.get_by_text("Customer data as of 2018-12-01")).to_be_visible()
    shots = []

    box = page.get_by_placeholder("Type a customer ID or name")
    box.fill("39")
    box.press("Enter")
    expect(page.get_by_text("Colin Freeman · customer 39")).to_be_visible(
        timeout=30_000
    )
    expect(page.get_by_text("Churn risk: 73.4% (high)")).to_be_visible()
    # The card is taller than the chat: it shows from its heading, not its end.
    _assert_answer_starts_in_view(page, "Colin Freeman · customer 39")
    box.fill("why?")
    box.press("Enter")
    expect(page.get_by_text("Why, strongest first")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("processing")).to_have_count(0)
    shots.append(tmp_path / "chat.png")
    page.screenshot(path=shots[-1], full_page=True)

    # The chat put customer 39 in the Customer tab.
    page.get_by_role("tab", name="Customer").click()
    customer = page.get_by_role("tabpanel")
    expect(customer.get_by_text("Colin Freeman · customer 39")).to_be_visible(
        timeout=30_000
    )
    expect(customer.locator(".js-plotly-plot")).to_have_count(4, timeout=30_000)
    expect(customer.get_by_text("Listening per day, last 60 days")).to_be_visible()
    shots.append(tmp_path / "customer.png")
    page.screenshot(path=shots[-1], full_page=True)

    page.get_by_role("tab", name="Overview").click()
    panel = page.get_by_role("tabpanel")
    expect(panel.get_by_role("columnheader", name="Active customers")).to_be_visible(
        timeout=30_000
    )
    expect(panel.get_by_text("5 scored active customers match")).to_be_visible()
    expect(panel.locator(".js-plotly-plot")).to_have_count(4, timeout=30_000)
    panel.get_by_role("button", name="Prepare a CSV").click()
    with page.expect_download() as download:
        panel.get_by_role("button", name="Download the CSV").click()
    csv = download.value.path().read_text()
    assert csv.splitlines()[0].startswith("customer,name,level,state,churn risk")
    assert len(csv.splitlines()) == 1 + 5
    shots.append(tmp_path / "overview.png")
    page.screenshot(path=shots[-1], full_page=True)
    # 52 is the one scored active customer in TX.
    panel.get_by_label("State").click()
    page.get_by_role("option", name="TX").click()
    expect(panel.get_by_text("1 scored active customer matches.")).to_be_visible(
        timeout=30_000
    )

    page.get_by_role("tab", name="Data quality").click()
    panel = page.get_by_role("tabpanel")
    expect(panel.get_by_text("Latest validation")).to_be_visible(timeout=30_000)
    expect(panel.get_by_text("Tenure is never negative.").last).to_be_visible()
    docs = panel.get_by_role("link", name="Open the Great Expectations Data Docs")
    response = page.request.get(app_url.rstrip("/") + docs.get_attribute("href"))
    assert response.ok and "Data Docs of the sample" in response.text()
    shots.append(tmp_path / "quality.png")
    page.screenshot(path=shots[-1], full_page=True)

    page.get_by_role("tab", name="Model").click()
    panel = page.get_by_role("tabpanel")
    expect(panel.get_by_text("Champion model xgb-7")).to_be_visible(timeout=30_000)
    expect(panel.locator(".js-plotly-plot")).to_have_count(1, timeout=30_000)
    shots.append(tmp_path / "model.png")
    page.screenshot(path=shots[-1], full_page=True)

    assert outside == [], "the page fetched from outside the app"
    for path in shots:
        _assert_not_blank(path)
    _keep(shots)


def test_app_with_users_asks_for_a_login_and_hides_names_from_analysts(
    serving_url, browser, monkeypatch
):
    from playwright.sync_api import expect

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    users = Users(
        {"ana": User("ana", "analyst", hash_password("s3cret-pass", iterations=1000))},
        "test",
    )
    for url in _serve(serving_url, users=users):
        page = browser.new_page()
        page.goto(url)
        page.get_by_label("username").fill("ana")
        page.get_by_label("password").fill("wrong")
        page.get_by_role("button", name="Login").click()
        expect(page.get_by_text("Incorrect Credentials")).to_be_visible()

        # The form starts empty again after a failed attempt.
        page.get_by_label("username").fill("ana")
        page.get_by_label("password").fill("s3cret-pass")
        page.get_by_role("button", name="Login").click()
        box = page.get_by_placeholder("Type a customer ID or name")
        box.fill("39")
        box.press("Enter")
        expect(page.get_by_text("name hidden · customer 39")).to_be_visible(
            timeout=30_000
        )
        assert page.get_by_text("Colin").count() == 0
