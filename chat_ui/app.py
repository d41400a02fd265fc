"""The Gradio app that wires the chat handlers to a page agents can use."""

from __future__ import annotations

import logging

import gradio as gr
import sqlalchemy as sa

from chat_ui.handlers import answer, as_of_line, example_messages

__all__ = ["TITLE", "build_app", "serve"]

log = logging.getLogger(__name__)

TITLE = "Sparkify customer assistant"


def build_app(url: str) -> gr.Blocks:
    """The agents' app, answering from the serving database at ``url``."""

    def respond(message: str, history: list[dict]) -> str:
        return answer(message, url)

    examples = example_messages(url)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}")
        # A callable value is read again on every page load, so the date
        # follows the database when a new run replaces it.
        gr.Markdown(lambda: as_of_line(url))
        with gr.Tab("Chat"):
            gr.ChatInterface(
                fn=respond,
                chatbot=gr.Chatbot(label="Answers", height=640),
                textbox=gr.Textbox(
                    placeholder="Type a customer ID, or a question that contains one",
                    submit_btn=True,
                ),
                examples=examples,
                cache_examples=False,
                analytics_enabled=False,
            )

        def ask(message: str) -> str:
            """The chat's reply to one message, without a conversation."""
            return answer(message, url)

        gr.api(ask, api_name="ask", concurrency_limit=None)
    return app


def serve(url: str, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Run the app on ``host``:``port`` until interrupted."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")

    app = build_app(url)
    log.info(
        "serving %s on http://%s:%d",
        sa.make_url(url).render_as_string(hide_password=True),
        host,
        port,
    )
    app.launch(server_name=host, server_port=port)
