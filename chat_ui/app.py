"""The Gradio app: wires the chat and the tab views to components, and serves it."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import gradio as gr

from chat_ui import _store as store
from chat_ui._auth import Users, check_serving
from chat_ui._chat import Conversation, answer, as_of_line, chat, example_messages
from chat_ui._views import (
    AT_RISK_SHOWN,
    at_risk_csv,
    customer_view,
    model_view,
    overview,
    quality_view,
)

__all__ = ["TITLE", "build_app", "serve"]

log = logging.getLogger(__name__)

TITLE = "Sparkify customer assistant"
_ANY = "any"
_FILE_ROUTE = "/gradio_api/file="
# Scrolls the chat so that the newest answer starts at the top of the panel,
# below the panel's floating label: a card is read from its heading down.
# Gradio's own autoscroll only goes to the bottom, so it is turned off.
_SHOW_ANSWER_TOP = """
() => {
  const show = () => {
    const panel = document.querySelector("#answers .bubble-wrap");
    const answers = panel ? panel.querySelectorAll(".message-row.bot-row") : [];
    if (!answers.length) return;
    const label = document.querySelector("#answers label");
    const top = Math.max(
      panel.getBoundingClientRect().top,
      label ? label.getBoundingClientRect().bottom : 0,
    );
    const answer = answers[answers.length - 1];
    panel.scrollTop += answer.getBoundingClientRect().top - top - 8;
  };
  requestAnimationFrame(() => requestAnimationFrame(show));
}
"""


def build_app(
    url: str, *, users: Users | None = None, mask_names: bool = False
) -> gr.Blocks:
    """The agents' app, answering from the serving database at ``url``.

    With ``users``, each user's role decides whether names are shown;
    ``mask_names`` hides them from everyone.
    """
    store.check_url(url)

    def masked(request: gr.Request | None) -> bool:
        if mask_names:
            return True
        if users is None:
            return False
        return not users.sees_names(getattr(request, "username", None))

    def respond(
        message: str,
        history: list[dict[str, Any]],
        conversation: Conversation | None,
        request: gr.Request,
    ) -> tuple[str, list[dict[str, Any]], Conversation, str | Any]:
        reply = chat(message, url, conversation, masked=masked(request))
        history = [
            *(history or []),
            {"role": "user", "content": message},
            {"role": "assistant", "content": reply.text},
        ]
        shown = reply.conversation.customer_id
        changed = shown and shown != (conversation and conversation.customer_id)
        return "", history, reply.conversation, shown if changed else gr.skip()

    def show_customer(customer_id: str, request: gr.Request) -> tuple[Any, ...]:
        view = customer_view(url, customer_id, masked=masked(request))
        return view.card, view.gauge, view.reasons, view.listening, view.thumbs

    def show_overview(
        level: str, state: str, band: str, minimum: float, request: gr.Request
    ) -> tuple[Any, ...]:
        view = overview(
            url,
            **_filters(level, state, band, minimum),
            masked=masked(request),
        )
        total = view.at_risk_total
        matches = "customer matches" if total == 1 else "customers match"
        shown = f"**{total:,}** scored active {matches}" + (
            f"; the {AT_RISK_SHOWN:,} most at risk are shown, the CSV has all."
            if total > AT_RISK_SHOWN
            else "."
        )
        return (
            view.headline,
            view.cancellations,
            view.distribution,
            view.by_level,
            view.by_state,
            gr.Dropdown(choices=[_ANY, *view.levels]),
            gr.Dropdown(choices=[_ANY, *view.states]),
            shown,
            view.at_risk,
            gr.DownloadButton(value=None, visible=False),
        )

    def prepare_csv(
        level: str, state: str, band: str, minimum: float, request: gr.Request
    ) -> gr.DownloadButton:
        path = at_risk_csv(
            url,
            **_filters(level, state, band, minimum),
            masked=masked(request),
        )
        return gr.DownloadButton(value=path, visible=path is not None)

    def show_quality() -> tuple[Any, ...]:
        view = quality_view(url)
        link = (
            f"[Open the Great Expectations Data Docs]({_FILE_ROUTE}{view.data_docs})"
            " (every suite, every run)."
            if view.data_docs and view.data_docs.exists()
            else "The Data Docs are written by `sparkify run` under "
            "`WORKDIR/reports/data_docs/`."
        )
        return view.summary, view.suites, view.failed, link

    def show_model() -> tuple[Any, ...]:
        view = model_view(url)
        return view.summary, view.evaluation, view.importance

    def ask(message: str) -> str:
        """The chat's reply to one message, without a conversation."""
        return answer(message, url, masked=mask_names or users is not None)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}")
        # A callable value is read again on every page load, so the date
        # follows the database when a new run replaces it.
        gr.Markdown(lambda: as_of_line(url))
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                conversation = gr.State(None)
                # Most of the window, whatever its size: a card is tall.
                chatbot = gr.Chatbot(
                    label="Answers", height="70vh", autoscroll=False, elem_id="answers"
                )
                box = gr.Textbox(
                    placeholder=(
                        "Type a customer ID or name, or a question such as "
                        '"top 10 at-risk paid customers"'
                    ),
                    show_label=False,
                    submit_btn=True,
                )
                gr.Examples(
                    example_messages(url, masked=mask_names), inputs=box, label=None
                )
            with gr.Tab("Customer", id="customer"):
                with gr.Row():
                    customer_id = gr.Textbox(
                        label="Customer ID", placeholder="e.g. 1042", scale=4
                    )
                    show = gr.Button("Show", variant="primary", scale=1)
                with gr.Row():
                    with gr.Column(scale=3):
                        card = gr.Markdown("Type a customer ID and press Enter.")
                    with gr.Column(scale=2):
                        gauge = gr.Plot(label="Churn risk", show_label=False)
                        reasons = gr.Plot(label="Reasons", show_label=False)
                with gr.Row():
                    listening = gr.Plot(label="Listening", show_label=False)
                    thumbs = gr.Plot(label="Thumbs", show_label=False)
            with gr.Tab("Overview", id="overview"):
                headline = gr.Markdown()
                with gr.Row():
                    cancellations = gr.Plot(show_label=False)
                    distribution = gr.Plot(show_label=False)
                with gr.Row():
                    by_level = gr.Plot(show_label=False)
                    by_state = gr.Plot(show_label=False)
                gr.Markdown("### Customers at risk")
                with gr.Row():
                    level = gr.Dropdown([_ANY], value=_ANY, label="Level")
                    state = gr.Dropdown([_ANY], value=_ANY, label="State")
                    band = gr.Dropdown(
                        [_ANY, "high", "medium", "low"], value=_ANY, label="Risk band"
                    )
                    minimum = gr.Slider(
                        0, 100, value=0, step=1, label="Churn risk at least (%)"
                    )
                matching = gr.Markdown()
                at_risk = gr.Dataframe(interactive=False, wrap=True, max_height=480)
                with gr.Row():
                    prepare = gr.Button("Prepare a CSV of every matching customer")
                    download = gr.DownloadButton(
                        "Download the CSV", visible=False, variant="primary"
                    )
            with gr.Tab("Data quality", id="quality"):
                quality_summary = gr.Markdown()
                suites = gr.Dataframe(label="Suites", interactive=False)
                failed = gr.Dataframe(
                    label="Failed expectations", interactive=False, wrap=True
                )
                docs = gr.Markdown()
            with gr.Tab("Model", id="model"):
                model_summary = gr.Markdown()
                evaluation = gr.Dataframe(label="Evaluation", interactive=False)
                importance = gr.Plot(show_label=False)

        customer_outputs = [card, gauge, reasons, listening, thumbs]
        answered = box.submit(
            respond,
            [box, chatbot, conversation],
            [box, chatbot, conversation, customer_id],
            api_visibility="private",
        )
        answered.then(None, js=_SHOW_ANSWER_TOP, api_visibility="private")
        # The Customer tab follows the customer the chat last showed.
        answered.then(
            show_customer, customer_id, customer_outputs, api_visibility="private"
        )
        for trigger in (customer_id.submit, show.click):
            trigger(
                show_customer, customer_id, customer_outputs, api_visibility="private"
            )
        filters = [level, state, band, minimum]
        overview_outputs = [
            headline,
            cancellations,
            distribution,
            by_level,
            by_state,
            level,
            state,
            matching,
            at_risk,
            download,
        ]
        for control in (level, state, band):
            control.input(
                show_overview, filters, overview_outputs, api_visibility="private"
            )
        minimum.release(
            show_overview, filters, overview_outputs, api_visibility="private"
        )
        app.load(show_overview, filters, overview_outputs, api_visibility="private")
        prepare.click(prepare_csv, filters, download, api_visibility="private")
        app.load(
            show_quality,
            None,
            [quality_summary, suites, failed, docs],
            api_visibility="private",
        )
        app.load(
            show_model,
            None,
            [model_summary, evaluation, importance],
            api_visibility="private",
        )
        gr.api(ask, api_name="ask", concurrency_limit=None)
    return app


def serve(
    url: str,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    users: Users | None = None,
    mask_names: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Run the app on ``host``:``port`` until interrupted.

    Any address but loopback needs ``users``: the app shows customers' data.
    ``block=False`` returns the running app at once (``app.close()`` stops
    it), for tests and scripts.
    """
    check_serving(host, port, users)

    # Gradio's queue rebuilds a pandas summary of its last 10,000 events after
    # every event unless told to do it less often (gradio/queueing.py); at
    # 20 agents that is most of the CPU a question costs.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    app = build_app(url, users=users, mask_names=mask_names)
    docs = quality_view(url).data_docs
    threading.Thread(target=_warm_up, args=(url,), daemon=True).start()
    log.info(
        "serving %s on http://%s:%d (%s)",
        store.safe_url(url),
        host,
        port,
        f"login required, users from {users.source}" if users else "no login",
    )
    app.queue(default_concurrency_limit=8).launch(
        server_name=host,
        server_port=port,
        auth=users.check if users else None,
        allowed_paths=[str(docs.parent)] if docs else None,
        prevent_thread_lock=not block,
        # `sparkify serve` says where it listens; Gradio's own lines would add
        # "To create a public link, set share=True", which this app never does.
        quiet=True,
    )
    return app


def _filters(level: str, state: str, band: str, minimum: float) -> dict[str, Any]:
    """The Overview controls' values as the views' filter arguments."""
    return {
        "level": None if level == _ANY else level,
        "state": None if state == _ANY else state,
        "band": None if band == _ANY else band,
        "min_probability": minimum / 100,
    }


def _warm_up(url: str) -> None:
    """Compute the whole-database aggregates before the first question needs them."""
    started = time.monotonic()
    overview(url)
    log.info(
        "aggregates of %s ready in %.1fs",
        store.safe_url(url),
        time.monotonic() - started,
    )
