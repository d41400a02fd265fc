"""Screenshot every tab of the agents' app on a serving database, for the README.

    .venv/bin/python scripts/screenshot_app.py sqlite:///work/serving.db docs/

Serves the app on a free localhost port, asks the chat about the customer
most at risk ("customer ID is asking about ads", then "why?" and "what
should I offer?"), opens the Customer, Overview, Data quality and Model tabs
in Debian's Chromium (driven by Playwright) and saves chat.png,
customer.png, overview.png, quality.png and model.png in the folder.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _top_customer(url: str) -> str:
    from chat_ui import _store as store

    with store.connect(url) as connection:
        rows, _ = store.at_risk(connection, limit=1)
    if rows.empty:
        sys.exit(f"{url} has no scored customers to show; run `sparkify run` first")
    return str(rows["customer_id"].iloc[0])


def _ask(page: Page, message: str, expected: str) -> None:
    """Send ``message`` and wait until its whole answer is on the page."""
    answers = page.get_by_text(expected)
    before = answers.count()
    box = page.get_by_placeholder("Type a customer ID or name")
    box.fill(message)
    box.press("Enter")
    expect(answers).to_have_count(before + 1, timeout=30_000)
    expect(page.get_by_text("processing")).to_have_count(0, timeout=30_000)


def _tab(page: Page, name: str, expected: str, out: Path) -> None:
    page.get_by_role("tab", name=name).click()
    panel = page.get_by_role("tabpanel")
    expect(panel.get_by_text(expected).first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1_500)  # let Plotly finish drawing
    page.screenshot(path=out, full_page=True)


def main(url: str, folder: str) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from chat_ui import serve

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    customer = _top_customer(url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = serve(url, port=port, block=False)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            # Tall enough for the chat to show the card and both follow-ups.
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.goto(f"http://127.0.0.1:{port}/")
            _ask(page, f"customer {customer} is asking about ads", "Churn risk")
            _ask(page, "why?", "Why, strongest first")
            _ask(page, "what should I offer?", "Suggested action")
            page.screenshot(path=out / "chat.png", full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})
            _tab(page, "Customer", f"customer {customer}", out / "customer.png")
            _tab(page, "Overview", "Customers at risk", out / "overview.png")
            _tab(page, "Data quality", "Latest validation", out / "quality.png")
            _tab(page, "Model", "Champion model", out / "model.png")
            browser.close()
    finally:
        app.close()
    print(f"wrote 5 screenshots of customer {customer} to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
