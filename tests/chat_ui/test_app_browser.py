"""The agents' app in a real Chromium: type an ID, read the customer's card."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app_url(serving_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from chat_ui import build_app

    app = build_app(serving_url)
    _, local_url, _ = app.launch(
        server_name="127.0.0.1",
        server_port=_free_port(),
        prevent_thread_lock=True,
        quiet=True,
    )
    try:
        yield local_url
    finally:
        app.close()


def test_app_answers_a_customer_id_typed_in_the_chat(app_url: str, tmp_path: Path):
    from PIL import Image
    from playwright.sync_api import Request, expect, sync_playwright

    screenshot = tmp_path / "chat.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            outside: list[str] = []

            def note_outside(request: Request) -> None:
                if not request.url.startswith(app_url):
                    outside.append(request.url)

            page.on("request", note_outside)
            page.goto(app_url)
            expect(
                page.get_by_text("Sparkify customer assistant").first
            ).to_be_visible()
            expect(page.get_by_text("Customer data as of 2018-12-01")).to_be_visible()

            box = page.get_by_placeholder("Type a customer ID")
            box.fill("39")
            box.press("Enter")

            expect(page.get_by_text("Colin Freeman · customer 39")).to_be_visible(
                timeout=30_000
            )
            expect(page.get_by_text("Churn risk: 73.4% (high)")).to_be_visible()
            expect(page.get_by_text("processing")).to_have_count(0)
            page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()

    assert outside == [], "the page fetched from outside the app"
    if os.environ.get("SPARKIFY_SCREENSHOTS"):
        target = Path(os.environ["SPARKIFY_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / "chat.png")
    with Image.open(screenshot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 16, "the screenshot looks blank"
