"""The support agents' app: chat, customer view and overview from the serving DB."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat_ui._chat import (
    MAX_MESSAGE_CHARS,
    Conversation,
    Reply,
    answer,
    as_of_line,
    chat,
    example_messages,
)

if TYPE_CHECKING:
    from chat_ui.app import build_app, serve

__all__ = [
    "MAX_MESSAGE_CHARS",
    "Conversation",
    "Reply",
    "answer",
    "as_of_line",
    "build_app",
    "chat",
    "example_messages",
    "serve",
]


def __getattr__(name: str) -> Any:
    # Gradio takes seconds to import; only the app needs it, not answer().
    if name in ("build_app", "serve"):
        from chat_ui import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
