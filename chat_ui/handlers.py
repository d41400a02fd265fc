"""Answers to support agents' questions, read from the serving database."""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from sparkify.serving import CHURN_SCORES, CUSTOMERS, METADATA

__all__ = ["MAX_MESSAGE_CHARS", "answer", "as_of_line", "example_messages"]

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000

_NUMBER = re.compile(r"\d+")
_EXAMPLE_COUNT = 3

# Label of each activity measure, in the order the card lists them.
_ACTIVITY = {
    "sessions": "Sessions",
    "songs": "Songs played",
    "listening_minutes": "Listening minutes",
    "thumbs_up": "Thumbs up",
    "thumbs_down": "Thumbs down",
    "adverts": "Adverts played",
    "errors": "Errors",
}
_GENDERS = {"F": "female", "M": "male"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+|!~])")

_NO_DATABASE = (
    "There is no serving database yet, so I have no customers to show. "
    "Run `sparkify run` first, then ask again."
)
_TOO_LONG = (
    f"That message is longer than {MAX_MESSAGE_CHARS:,} characters, which is "
    "more than I can read. Please send just the customer ID, or a short "
    "question that contains it."
)

_UNREADABLE = (
    "I could not read the serving database just now. Please try again in a "
    "minute; if it keeps failing, ask for `sparkify run` to be rerun."
)


class _NoDatabase(Exception):
    """The serving database has not been published at this URL."""


def answer(message: str, url: str) -> str:
    """Reply, in Markdown, to an agent's message about a customer.

    The first number in ``message`` that is the ID of a known customer picks
    the customer; a message without a number gets help. Every figure in the
    reply is read from the serving database at ``url``.
    """
    _check_url(url)
    started = time.monotonic()
    message = message or ""
    if len(message) > MAX_MESSAGE_CHARS:
        return _TOO_LONG

    numbers = list(dict.fromkeys(_NUMBER.findall(message)))
    try:
        with _connect(url) as connection:
            facts = _facts(connection)
            if not numbers:
                kind, reply = "help", _help(connection)
            else:
                customer = _first_customer(connection, numbers)
                if customer is None:
                    kind, reply = "unknown", _unknown(connection, numbers[0], facts)
                else:
                    kind, reply = "card", _card(customer, facts)
    except _NoDatabase:
        kind, reply = "no-database", _NO_DATABASE
    except sa.exc.DBAPIError:
        log.exception("could not read the serving database at %s", _safe(url))
        kind, reply = "unreadable", _UNREADABLE

    log.info("answered kind=%s in %.0f ms", kind, 1000 * (time.monotonic() - started))
    return reply


def as_of_line(url: str) -> str:
    """One line saying how fresh the data behind the answers is."""
    _check_url(url)
    try:
        with _connect(url) as connection:
            facts = _facts(connection)
    except _NoDatabase:
        return _NO_DATABASE
    except sa.exc.DBAPIError:
        log.exception("could not read the serving database at %s", _safe(url))
        return _UNREADABLE

    parts = [
        f"Customer data as of **{_escape(facts.get('as_of', 'an unknown date'))}**"
    ]
    if facts.get("model_version"):
        parts.append(f"churn model {_code(facts['model_version'])}")
    return " · ".join(parts) + "."


def example_messages(url: str) -> list[str]:
    """Messages an agent could send, built around real customer IDs."""
    _check_url(url)
    try:
        with _connect(url) as connection:
            ids = _example_ids(connection)
    except (_NoDatabase, sa.exc.DBAPIError):
        ids = []

    examples = []
    if ids:
        examples.append(ids[0])
    if len(ids) > 1:
        examples.append(f"customer {ids[1]} is asking about ads")
    return [*examples, "What can you do?"]


@functools.lru_cache(maxsize=16)
def _engine(url: str) -> sa.Engine:
    # A pooled SQLite connection keeps the file it opened, so after publish()
    # moves a new database over it with os.replace the pool would go on
    # serving the old one. NullPool opens the current file for every question.
    if sa.make_url(url).get_backend_name() == "sqlite":
        return sa.create_engine(url, poolclass=NullPool)
    return sa.create_engine(url, pool_pre_ping=True)


def _connect(url: str) -> sa.Connection:
    engine = _engine(url)
    database = engine.url.database
    if (
        engine.url.get_backend_name() == "sqlite"
        and database not in (None, "", ":memory:")
        and not engine.url.query.get("uri")
        and not Path(database).is_file()
    ):
        # Connecting would create an empty file in its place.
        raise _NoDatabase

    connection = engine.connect()
    tables = set(sa.inspect(connection).get_table_names())
    if not {CUSTOMERS.name, CHURN_SCORES.name, METADATA.name} <= tables:
        connection.close()
        raise _NoDatabase
    return connection


def _facts(connection: sa.Connection) -> dict[str, str]:
    rows = connection.execute(sa.select(METADATA.c.key, METADATA.c.value))
    return {key: value for key, value in rows}


def _first_customer(
    connection: sa.Connection, numbers: list[str]
) -> Mapping[str, Any] | None:
    query = (
        sa.select(
            CUSTOMERS,
            CHURN_SCORES.c.churn_probability,
            CHURN_SCORES.c.risk_band,
            CHURN_SCORES.c.model_version,
            CHURN_SCORES.c.cutoff_date,
            CHURN_SCORES.c.reason_1,
            CHURN_SCORES.c.reason_2,
            CHURN_SCORES.c.reason_3,
            CHURN_SCORES.c.action,
        )
        .select_from(
            CUSTOMERS.outerjoin(
                CHURN_SCORES, CHURN_SCORES.c.customer_id == CUSTOMERS.c.customer_id
            )
        )
        .where(CUSTOMERS.c.customer_id.in_(numbers))
    )
    found = {row.customer_id: row._mapping for row in connection.execute(query)}
    return next((found[number] for number in numbers if number in found), None)


def _example_ids(connection: sa.Connection) -> list[str]:
    # Active customers first, those with a score before the rest: an example
    # should show everything a card can hold.
    scored = sa.exists().where(CHURN_SCORES.c.customer_id == CUSTOMERS.c.customer_id)
    query = (
        sa.select(CUSTOMERS.c.customer_id)
        .order_by(
            CUSTOMERS.c.is_cancelled,
            sa.case((scored, 0), else_=1),
            CUSTOMERS.c.customer_id,
        )
        .limit(_EXAMPLE_COUNT)
    )
    return list(connection.execute(query).scalars())


def _how_to_ask(ids: list[str]) -> str:
    if not ids:
        return (
            "The serving database holds no customers yet. Run `sparkify run` "
            "first, then ask again."
        )
    listed = ", ".join(f"`{customer_id}`" for customer_id in ids)
    return (
        f"Type a customer ID such as {listed}, or a question that contains "
        f'one, e.g. "customer {ids[0]} is asking about ads".'
    )


def _help(connection: sa.Connection) -> str:
    return (
        "I look up Sparkify customers for you. For a customer ID I show their "
        "profile, their activity in the last 7 and 28 days next to the 28 days "
        "before, and how likely they are to cancel soon.\n\n"
        + _how_to_ask(_example_ids(connection))
    )


def _unknown(connection: sa.Connection, number: str, facts: Mapping[str, str]) -> str:
    as_of = f" (data as of {_escape(facts['as_of'])})" if facts.get("as_of") else ""
    return (
        f"Customer ID `{number}` was not found in the serving database{as_of}.\n\n"
        + _how_to_ask(_example_ids(connection))
    )


def _card(customer: Mapping[str, Any], facts: Mapping[str, str]) -> str:
    name = " ".join(
        _escape(part)
        for part in (customer["first_name"], customer["last_name"])
        if part
    )
    heading = f"### {name or 'Name not recorded'} · customer {customer['customer_id']}"

    profile = [
        f"**Level:** {_text(customer['level'])}",
        f"**Gender:** {_GENDERS.get(customer['gender'], _text(customer['gender']))}",
        f"**Location:** {_text(customer['location'] or customer['state'])}",
    ]
    history = [
        f"**Registered:** {_date(customer['registered_at'])}",
        f"**Tenure:** {_days(customer['tenure_days'])}",
        f"**Last active:** {_date(customer['last_active_at'])}",
    ]
    as_of = f" up to {_escape(facts['as_of'])}" if facts.get("as_of") else ""
    return "\n\n".join(
        [
            heading,
            _status(customer, facts),
            *_reasons(customer),
            "- " + " · ".join(profile) + "\n- " + " · ".join(history),
            f"**Activity{as_of}**",
            _activity_table(customer),
        ]
    )


def _status(customer: Mapping[str, Any], facts: Mapping[str, str]) -> str:
    if customer["is_cancelled"]:
        return (
            f"**Cancelled** on {_date(customer['cancelled_at'])}. "
            "No churn risk is given for customers who have already cancelled."
        )
    if customer["churn_probability"] is None:
        status = facts.get("model_status")
        return "No churn model has scored this customer yet." + (
            f" Model status: {_escape(status)}" if status else ""
        )
    return (
        f"**Churn risk: {_percent(customer['churn_probability'])} "
        f"({_escape(customer['risk_band'])})** · model "
        f"{_code(customer['model_version'])}, features cut off "
        f"{_escape(customer['cutoff_date'])}"
    )


def _reasons(customer: Mapping[str, Any]) -> list[str]:
    """What raises a scored customer's risk most, and the suggested action."""
    if customer["is_cancelled"] or customer["churn_probability"] is None:
        return []
    reasons = [customer[f"reason_{i}"] for i in (1, 2, 3) if customer[f"reason_{i}"]]
    parts = []
    if reasons:
        parts.append(
            "**What raises the risk most:**\n"
            + "\n".join(f"- {_escape(reason)}" for reason in reasons)
        )
    if customer["action"]:
        parts.append(f"**Suggested action:** {_escape(customer['action'])}")
    return parts


def _activity_table(customer: Mapping[str, Any]) -> str:
    lines = [
        "| | last 7 days | last 28 days | 28 days before | 28 days vs before |",
        "|---|---:|---:|---:|---:|",
    ]
    for measure, label in _ACTIVITY.items():
        recent, before = customer[f"{measure}_28d"], customer[f"{measure}_prev_28d"]
        cells = [
            _count(customer[f"{measure}_7d"]),
            _count(recent),
            _count(before),
            _change(recent, before),
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _percent(probability: float) -> str:
    return f"{probability:.1%}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _change(recent: float, before: float) -> str:
    if before == 0:
        return "–" if recent == 0 else "new"
    return f"{(recent - before) / before:+.0%}"


def _date(value: str | None) -> str:
    # Timestamps are ISO 8601 strings; the date is their first ten characters.
    return _escape(value[:10]) if value else "not recorded"


def _days(value: int | None) -> str:
    if value is None:
        return "not recorded"
    return "1 day" if value == 1 else f"{value:,} days"


def _text(value: str | None) -> str:
    return _escape(value) if value else "not recorded"


def _escape(value: object) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


def _code(value: object) -> str:
    return "`" + str(value).replace("`", "'") + "`"


def _check_url(url: str) -> None:
    try:
        sa.make_url(url)
    except (sa.exc.ArgumentError, TypeError, AttributeError) as error:
        raise ValueError(
            "url must be a SQLAlchemy URL such as 'sqlite:///work/serving.db', "
            f"got {url!r}"
        ) from error


def _safe(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
