"""Screenshot the agents' app answering one question, for the README.

    .venv/bin/python scripts/screenshot_app.py SERVING_URL OUT.png "customer 198"

Serves the app on a free localhost port, asks the question in Debian's
Chromium (driven by Playwright) and saves the page once the answer is in.
"""

from __future__ import annotations

import os
import socket
import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main(url: str, out: str, question: str) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from chat_ui import build_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_app(url)
    app.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1200, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/")
            box = page.get_by_placeholder(
                "Type a customer ID, or a question that contains one"
            )
            box.fill(question)
            box.press("Enter")
            page.get_by_text("Churn risk").first.wait_for(timeout=30_000)
            page.wait_for_timeout(1_000)
            page.screenshot(path=out, full_page=True)
            browser.close()
    finally:
        app.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
