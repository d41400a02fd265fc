"""The support agents' chat app: look up a customer, see their churn risk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat_ui.handlers import answer

if TYPE_CHECKING:
    from chat_ui.app import build_app, serve

__all__ = ["answer", "build_app", "serve"]


def __getattr__(name: str) -> Any:
    # Gradio takes seconds to import; only the app needs it, not answer().
    if name in ("build_app", "serve"):
        from chat_ui import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
