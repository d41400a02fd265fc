"""How the app writes figures, dates and customer text in Markdown."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "HIDDEN_NAME",
    "code",
    "count",
    "counted",
    "date",
    "days",
    "escape",
    "name_of",
    "percent",
    "plural",
    "text",
]

HIDDEN_NAME = "name hidden"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+|!~])")


def escape(value: object) -> str:
    """``value`` as Markdown text: no character of it formats anything."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


def code(value: object) -> str:
    return "`" + str(value).replace("`", "'") + "`"


def percent(probability: float) -> str:
    return f"{probability:.1%}"


def count(value: float) -> str:
    return f"{value:,.0f}"


def counted(value: float, noun: str) -> str:
    """``value`` and ``noun``, in the plural unless ``value`` is 1: "1 customer"."""
    return f"{count(value)} {plural(value, noun)}"


def date(value: str | None) -> str:
    # Timestamps are ISO 8601 strings; the date is their first ten characters.
    return escape(value[:10]) if value else "not recorded"


def days(value: int | None) -> str:
    if value is None:
        return "not recorded"
    return counted(value, "day")


def plural(value: float, noun: str) -> str:
    """``noun`` (a regular one) as it goes after ``value``: "customer(s)"."""
    return noun if value == 1 else noun + "s"


def text(value: str | None) -> str:
    return escape(value) if value else "not recorded"


def name_of(customer: Mapping[str, Any], *, masked: bool) -> str:
    """The customer's name as Markdown, or ``HIDDEN_NAME`` when masked."""
    if masked:
        return HIDDEN_NAME
    parts = [customer["first_name"], customer["last_name"]]
    return " ".join(escape(part) for part in parts if part) or "Name not recorded"
