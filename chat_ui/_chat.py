"""The chat: what an agent types, understood by rules, answered from the database.

Every figure, name and reason in a reply is read from the serving database;
a question the rules do not recognise gets help with real examples rather
than a guess. The conversation remembers the customer last shown (and the
list last offered), so follow-ups need no ID.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from chat_ui import _store as store
from chat_ui._format import (
    code,
    count,
    counted,
    date,
    days,
    escape,
    name_of,
    percent,
    plural,
    text,
)
from chat_ui._states import STATE_NAMES
from sparkify.serving import RISK_BANDS

__all__ = [
    "MAX_MESSAGE_CHARS",
    "Conversation",
    "Reply",
    "answer",
    "as_of_line",
    "chat",
    "example_messages",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
MAX_LIST = 50
NAME_CHOICES = 10

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
_BAND_FLOORS = dict(RISK_BANDS)

_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
# Numbers that are part of a question's settings, not customer IDs.
_SETTING_NUMBERS = re.compile(
    r"\b(?:top|first|best|worst)\s+(\d+)\b"
    r"|\b(?:last|past|previous)\s+(\d+)\s+(?:days?|weeks?|months?)\b"
    r"|\b(\d+)\s*(?:%|percent|days?|weeks?|months?)\b"
    r"|\b(\d+)\s+(?:riskiest|most|highest)\b",
    re.IGNORECASE,
)
# A question about a list of customers, whose numbers are its settings only:
# "top 10 at-risk paid customers in CA", "the 5 riskiest users".
_LIST_OF_CUSTOMERS = re.compile(
    r"\b(?:(?:top|first|best|worst)\s+\d+|\d+\s+(?:riskiest|most|highest))\s+"
    r"(?:[a-z-]+\s+){0,4}?(?:customers|users|subscribers)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_GREETING = re.compile(
    r"^\W*(hi|hello|hey|hiya|good (morning|afternoon|evening)|thanks|thank you"
    r"|help|what can you do|what do you do|what can i ask( you)?"
    r"|how do(es)? (this|it|you) work)(\s+(there|again|me|please|for now))?\W*$",
    re.IGNORECASE,
)
_LIST = re.compile(
    r"\b(top|list|show|which|who|most|highest|riskiest|biggest)\b", re.IGNORECASE
)
_RISKY = re.compile(
    r"\b(at[- ]risk|risk|riskiest|likely to (cancel|churn|leave|quit)|churn\w*)\b",
    re.IGNORECASE,
)
_HOW_MANY = re.compile(r"\b(how many|number of|count of|count)\b", re.IGNORECASE)
_CANCELLED = re.compile(
    r"\b(cancel\w*|churn\w*|left|leave|quit|unsubscrib\w*)\b", re.IGNORECASE
)
_RATE = re.compile(
    r"\b(churn|cancel\w*|attrition)\s+rates?\b|\brates? of (churn|cancel\w*)\b",
    re.IGNORECASE,
)
_BY = re.compile(
    r"\b(?:by|per|for each|across|split by)\s+(level|plan|tier|subscription|state"
    r"|region|gender|sex)s?\b",
    re.IGNORECASE,
)
_BAND = re.compile(r"\b(high|medium|low)[- ]risk\b|\brisk\s+(high|medium|low)\b", re.I)
_LEVEL = re.compile(r"\b(paid|premium|paying|free)\b", re.IGNORECASE)
_STATE_CODE = re.compile(r"\b([A-Z]{2})\b")
_ORDINAL = re.compile(
    r"^\s*(?:the\s+)?(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth"
    r"|tenth|last)\b(?:\s+one)?\s*[.!?]*\s*$",
    re.IGNORECASE,
)
# A question rather than a name: "what's the weather", "is it raining?".
_QUESTION = re.compile(
    r"^\W*(?:what|how|why|when|where|which|who|is|are|can|could|do|does|will"
    r"|would|should)\b|\?\s*$",
    re.IGNORECASE,
)
_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh"]
_ORDINALS += ["eighth", "ninth", "tenth"]
_TOPICS = {
    "why": re.compile(
        r"\b(why|reasons?|because|drivers?|explain|what drives|cause)\b", re.I
    ),
    "offer": re.compile(
        r"\b(offer|suggest\w*|recommend\w*|retain|retention|keep (him|her|them)"
        r"|what (should|can|could|do) (i|we)|action|discount|save)\b",
        re.IGNORECASE,
    ),
    "compare": re.compile(
        r"\b(compare\w*|comparison|other|others|peers?|average|typical|similar"
        r"|versus|vs)\b",
        re.IGNORECASE,
    ),
    "activity": re.compile(
        r"\b(activity|active|listen\w*|songs?|sessions?|usage|thumbs|adverts?|ads"
        r"|errors?)\b",
        re.IGNORECASE,
    ),
    "risk": re.compile(
        r"\b(risk|likely|likelihood|chance|probability|cancel\w*|churn\w*|leave)\b",
        re.I,
    ),
}
_TOPIC_WORDS = [re.compile(rule.pattern[2:-2], rule.flags) for rule in _TOPICS.values()]
# Words that are part of how agents ask, never part of a customer's name.
_NOT_NAMES = set(
    (
        "a about account all an and any anyone are as ask asking at be been but by "
        "called calling can card caller check could customer customers details did "
        "do does find for from get give has have he her him his how i id in info "
        "information is it just know last line look looking lookup me my named "
        "name no not now of on one or our phone please profile pull record search "
        "she show tell that the their them there they this to up user users wants "
        "was we what when where which who with would you your"
    ).split()
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


@dataclass(frozen=True)
class Conversation:
    """What a chat remembers between messages."""

    customer_id: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A reply in Markdown, the conversation after it, and what kind it was."""

    text: str
    conversation: Conversation = field(default_factory=Conversation)
    kind: str = "help"


def answer(message: str, url: str, *, masked: bool = False) -> str:
    """Reply, in Markdown, to one message on its own (no conversation)."""
    return chat(message, url, masked=masked).text


def chat(
    message: str,
    url: str,
    conversation: Conversation | None = None,
    *,
    masked: bool = False,
) -> Reply:
    """Reply to an agent's ``message`` in ``conversation``, from ``url``.

    ``masked`` hides customers' names and refuses look-ups by name, for
    roles that work with IDs only.
    """
    store.check_url(url)
    started = time.monotonic()
    conversation = conversation or Conversation()
    message = message or ""
    if len(message) > MAX_MESSAGE_CHARS:
        reply = Reply(_TOO_LONG, conversation, "too-long")
    else:
        try:
            with store.connect(url) as connection:
                context = _Context(url, connection, store.facts(connection), masked)
                reply = _route(message, conversation, context)
        except store.NoDatabase as missing:
            reply = Reply(str(missing), conversation, "no-database")
        except sa.exc.DBAPIError:
            log.exception(
                "could not read the serving database at %s", store.safe_url(url)
            )
            reply = Reply(_UNREADABLE, conversation, "unreadable")

    log.info(
        "answered kind=%s in %.0f ms", reply.kind, 1000 * (time.monotonic() - started)
    )
    return reply


def as_of_line(url: str) -> str:
    """One line saying how fresh the data behind the answers is."""
    store.check_url(url)
    try:
        with store.connect(url) as connection:
            facts = store.facts(connection)
    except store.NoDatabase as missing:
        return str(missing)
    except sa.exc.DBAPIError:
        log.exception("could not read the serving database at %s", store.safe_url(url))
        return _UNREADABLE

    parts = [f"Customer data as of **{escape(facts.get('as_of', 'an unknown date'))}**"]
    if facts.get("model_version"):
        parts.append(f"churn model {code(facts['model_version'])}")
    return " · ".join(parts) + "."


def example_messages(url: str, *, masked: bool = False) -> list[str]:
    """Messages an agent could send, built around real customers."""
    store.check_url(url)
    try:
        with store.connect(url) as connection:
            context = _Context(url, connection, store.facts(connection), masked)
            return context.examples()
    except (store.NoDatabase, sa.exc.DBAPIError):
        return ["What can you do?"]


class _Context:
    """One question's connection, facts and (lazily) whole-database aggregates."""

    def __init__(
        self,
        url: str,
        connection: sa.Connection,
        facts: Mapping[str, str],
        masked: bool,
    ) -> None:
        self.url = url
        self.connection = connection
        self.facts = facts
        self.masked = masked
        self._snapshot: store.Snapshot | None = None

    @property
    def snapshot(self) -> store.Snapshot:
        if self._snapshot is None:
            self._snapshot = store.snapshot(
                self.url, self.connection, self.facts.get("built_at", "")
            )
        return self._snapshot

    @property
    def as_of(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(self.facts.get("as_of", ""))
        except ValueError:
            return None

    def list_example(self) -> str:
        state = self.snapshot.top_state
        return (
            f"top 10 at-risk paid customers in {state}"
            if state
            else "top 10 at-risk paid customers"
        )

    def examples(self) -> list[str]:
        ids = store.example_ids(self.connection)
        found = []
        if ids:
            found.append(ids[0])
        if len(ids) > 1:
            found.append(f"customer {ids[1]} is asking about ads")
        if self.snapshot.example_name and not self.masked:
            found.append(self.snapshot.example_name)
        found.append(self.list_example())
        found += ["how many customers cancelled last week", "churn rate by level"]
        return [*found, "What can you do?"]


def _route(message: str, conversation: Conversation, context: _Context) -> Reply:
    is_list = _LIST_OF_CUSTOMERS.search(message) is not None
    settings = set(_settings_numbers(message))
    # A list question's stray numbers ("... in CA' OR '1'='1") are not IDs.
    numbers = [] if is_list else _NUMBER.findall(message)
    ids = list(dict.fromkeys(n for n in numbers if n not in settings))
    known = store.customers_by_id(context.connection, ids)
    customer = next((known[i] for i in ids if i in known), None)
    if customer is not None:
        return _about(customer, _topic(message), context, message)

    if _GREETING.search(message) or not message.strip():
        return Reply(_help(context), conversation, "help")
    if _RATE.search(message):
        return Reply(_churn_rate(message, context), conversation, "churn-rate")
    if _HOW_MANY.search(message):
        return Reply(_how_many(message, context), conversation, "count")
    if is_list or (_LIST.search(message) and _RISKY.search(message)):
        size = _list_size(message)
        if size is not None and size < 1:
            return Reply(_list_range(size, context), conversation, "list-size")
        body, listed = _at_risk_list(message, size, context)
        return Reply(
            body, Conversation(conversation.customer_id, tuple(listed)), "list"
        )
    if ids:
        return Reply(_unknown(ids[0], context), conversation, "unknown")

    picked = _ORDINAL.match(message)
    if picked and conversation.choices:
        return _pick(picked.group(1).lower(), conversation, context)
    if picked:
        return Reply(
            _no_list(picked.group(1).lower(), context), conversation, "no-list"
        )
    topic = _topic(message)
    if topic and conversation.customer_id:
        found = store.customers_by_id(context.connection, [conversation.customer_id])
        if conversation.customer_id in found:
            return _about(found[conversation.customer_id], topic, context, message)
    words = _name_words(message)
    if words:
        reply = _by_name(words, message, conversation, context)
        if reply is not None:
            return reply
    if topic:
        return Reply(
            "Which customer do you mean? Type their customer ID (or name), then "
            "ask again.",
            conversation,
            "which-customer",
        )
    return Reply(
        "I can't answer that from the customer data. " + _what_i_do(context),
        conversation,
        "cannot-answer",
    )


def _settings_numbers(message: str) -> list[str]:
    """Numbers that set a question's count or period ("top 10", "last 30 days")."""
    return [
        number
        for match in _SETTING_NUMBERS.finditer(message)
        for number in match.groups()
        if number
    ]


def _list_size(message: str) -> int | None:
    """How many customers a list question asks for ("top 10"), if it says."""
    for match in _SETTING_NUMBERS.finditer(message):
        number = match.group(1) or match.group(4)
        if number:
            return int(number)
    return None


def _topic(message: str) -> str | None:
    return next((name for name, rule in _TOPICS.items() if rule.search(message)), None)


# -- one customer -------------------------------------------------------------


def _about(
    customer: Mapping[str, Any],
    topic: str | None,
    context: _Context,
    message: str = "",
) -> Reply:
    conversation = Conversation(customer_id=customer["customer_id"])
    if topic == "why":
        body, kind = _why(customer, context), "reasons"
    elif topic == "offer":
        body, kind = _offer(customer, context), "offer"
    elif topic == "compare":
        body, kind = _compare(customer, message, context), "compare"
    else:
        body, kind = _card(customer, context), "card"
    return Reply(body, conversation, kind)


def _heading(customer: Mapping[str, Any], context: _Context) -> str:
    name = name_of(customer, masked=context.masked)
    return f"### {name} · customer {escape(customer['customer_id'])}"


def _card(customer: Mapping[str, Any], context: _Context) -> str:
    profile = [
        f"**Level:** {text(customer['level'])}",
        f"**Gender:** {_GENDERS.get(customer['gender'], text(customer['gender']))}",
        f"**Location:** {text(customer['location'] or customer['state'])}",
    ]
    history = [
        f"**Registered:** {date(customer['registered_at'])}",
        f"**Tenure:** {days(customer['tenure_days'])}",
        f"**Last active:** {date(customer['last_active_at'])}",
    ]
    as_of = context.facts.get("as_of")
    return "\n\n".join(
        [
            _heading(customer, context),
            _status(customer, context),
            *_reasons(customer),
            "- " + " · ".join(profile) + "\n- " + " · ".join(history),
            f"**Activity{f' up to {escape(as_of)}' if as_of else ''}**",
            _activity_table(customer),
        ]
    )


def _status(customer: Mapping[str, Any], context: _Context) -> str:
    if customer["is_cancelled"]:
        return (
            f"**Cancelled** on {date(customer['cancelled_at'])}. "
            "No churn risk is given for customers who have already cancelled."
        )
    if customer["churn_probability"] is None:
        status = context.facts.get("model_status")
        return "No churn model has scored this customer yet." + (
            f" Model status: {escape(status)}" if status else ""
        )
    horizon = context.facts.get("horizon_days")
    within = f" within {escape(horizon)} days" if horizon else ""
    return (
        f"**Churn risk: {percent(customer['churn_probability'])} "
        f"({escape(customer['risk_band'])})**{within} · model "
        f"{code(customer['model_version'])}, features cut off "
        f"{escape(customer['cutoff_date'])}"
    )


def _is_scored(customer: Mapping[str, Any]) -> bool:
    return not customer["is_cancelled"] and customer["churn_probability"] is not None


def _reason_list(customer: Mapping[str, Any]) -> list[str]:
    return [customer[f"reason_{i}"] for i in (1, 2, 3) if customer[f"reason_{i}"]]


def _reasons(customer: Mapping[str, Any]) -> list[str]:
    """What raises a scored customer's risk most, and the suggested action."""
    if not _is_scored(customer):
        return []
    parts = []
    reasons = _reason_list(customer)
    if reasons:
        parts.append(
            "**What raises the risk most:**\n"
            + "\n".join(f"- {escape(reason)}" for reason in reasons)
        )
    if customer["action"]:
        parts.append(f"**Suggested action:** {escape(customer['action'])}")
    return parts


def _why(customer: Mapping[str, Any], context: _Context) -> str:
    heading = _heading(customer, context)
    if not _is_scored(customer):
        return f"{heading}\n\n{_status(customer, context)}"
    reasons = _reason_list(customer)
    risk = _status(customer, context)
    if not reasons:
        return (
            f"{heading}\n\n{risk}\n\nNone of this customer's figures raises their "
            "risk above the average customer's: the model gives no reason."
        )
    listed = "\n".join(f"{i}. {escape(r)}" for i, r in enumerate(reasons, 1))
    return (
        f"{heading}\n\n{risk}\n\n**Why, strongest first** (what pushes the "
        f"model's score up most for this customer):\n{listed}"
    )


def _offer(customer: Mapping[str, Any], context: _Context) -> str:
    heading = _heading(customer, context)
    if not _is_scored(customer):
        return f"{heading}\n\n{_status(customer, context)}"
    if not customer["action"]:
        return f"{heading}\n\nThe retention rules give no suggestion for them."
    rule = customer["action_rule"]
    because = f" (rule: {escape(rule)})" if rule else ""
    return (
        f"{heading}\n\n**Suggested action:** {escape(customer['action'])}{because}\n\n"
        f"{_status(customer, context)}"
    )


def _compare(customer: Mapping[str, Any], message: str, context: _Context) -> str:
    named = _LEVEL.search(message)
    level = _level_word(named.group(1)) if named else customer["level"]
    sums, total = context.snapshot.peer_sums.get(level, ({}, 0))
    is_peer = not customer["is_cancelled"] and customer["level"] == level
    others = total - (1 if is_peer else 0)
    # "other" only when the customer is one of the group and is left out.
    other = "other " if is_peer else ""
    heading = _heading(customer, context)
    if others <= 0:
        return (
            f"{heading}\n\nThere are no {other}active {escape(level)} customers to "
            "compare with."
        )

    group = f"the {other}{escape(counted(others, f'active {level} customer'))}"
    if not is_peer:
        who = f"customer {escape(customer['customer_id'])}"
        group += (
            f" ({who} has cancelled)"
            if customer["is_cancelled"]
            else f" ({who} is on the {escape(customer['level'])} level)"
        )
    lines = [
        f"| | this customer | average of {group} |",
        "|---|---:|---:|",
    ]
    for measure, label in store.PEER_MEASURES.items():
        own = customer[measure] or 0
        mean = (sums[measure] - (own if is_peer else 0)) / others
        lines.append(f"| {label} | {own:,.0f} | {mean:,.1f} |")
    parts = [heading, "\n".join(lines)]
    if _is_scored(customer):
        probability = customer["churn_probability"]
        share, scored = context.snapshot.percentile(level, probability, is_peer)
        if scored:
            scored_group = counted(scored, f"scored {level} customer")
            parts.append(
                f"Their churn risk, {percent(probability)}, is higher than that of "
                f"{share:.0%} of the {other}{escape(scored_group)}."
            )
    return "\n\n".join(parts)


def _activity_table(customer: Mapping[str, Any]) -> str:
    lines = [
        "| | last 7 days | last 28 days | 28 days before | 28 days vs before |",
        "|---|---:|---:|---:|---:|",
    ]
    for measure, label in _ACTIVITY.items():
        recent, before = customer[f"{measure}_28d"], customer[f"{measure}_prev_28d"]
        cells = [
            count(customer[f"{measure}_7d"]),
            count(recent),
            count(before),
            _change(recent, before),
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _change(recent: float, before: float) -> str:
    if before == 0:
        return "–" if recent == 0 else "new"
    return f"{(recent - before) / before:+.0%}"


def _unknown(number: str, context: _Context) -> str:
    as_of = context.facts.get("as_of")
    when = f" (data as of {escape(as_of)})" if as_of else ""
    return (
        f"Customer ID `{escape(number)}` was not found in the serving database"
        f"{when}.\n\n" + _how_to_ask(context)
    )


# -- names --------------------------------------------------------------------


def _name_words(message: str) -> list[str]:
    """The words of ``message`` that could be part of a customer's name."""
    words = (word.strip("'’-") for word in _WORD.findall(message))
    return [
        word
        for word in words
        if len(word) > 1
        and word.lower() not in _NOT_NAMES
        and not any(rule.fullmatch(word) for rule in _TOPIC_WORDS)
    ]


def _looks_like_a_name(message: str, words: list[str]) -> bool:
    """Whether a message none matched was meant as a name: worth saying so.

    Capitalised words are taken for a name ("Who is Zebediah Quux?"); so is
    a short message in lower case, unless it reads as a question ("what's
    the weather").
    """
    if all(word[:1].isupper() for word in words):
        return True
    return len(message.split()) <= 3 and not _QUESTION.search(message)


def _by_name(
    words: list[str], message: str, conversation: Conversation, context: _Context
) -> Reply | None:
    if context.masked:
        if not _looks_like_a_name(message, words):
            return None
        return Reply(
            "Customer names are hidden for your role, so I cannot look customers "
            "up by name. Please ask with the customer ID.",
            conversation,
            "name-refused",
        )
    found, total = store.customers_by_name(context.connection, words, NAME_CHOICES)
    if total == 1:
        return _about(found[0], None, context)
    if total == 0:
        if not _looks_like_a_name(message, words):
            return None
        shown = escape(" ".join(words))
        return Reply(
            f"I found no customer named {shown}. Check the spelling, or ask with "
            "the customer ID.\n\n" + _what_i_do(context),
            conversation,
            "name-not-found",
        )

    rows = [
        "| | customer | name | level | location | churn risk |",
        "|---:|---|---|---|---|---|",
    ]
    for i, customer in enumerate(found, 1):
        risk = (
            "cancelled"
            if customer["is_cancelled"]
            else percent(customer["churn_probability"])
            if customer["churn_probability"] is not None
            else "not scored"
        )
        rows.append(
            f"| {i} | {escape(customer['customer_id'])} | "
            f"{name_of(customer, masked=False)} | {text(customer['level'])} | "
            f"{text(customer['location'])} | {risk} |"
        )
    more = (
        f" The first {len(found)} are listed; add the last name or the city to "
        "narrow it."
        if total > len(found)
        else ""
    )
    return Reply(
        f"{count(total)} customers match {escape(' '.join(words))}.{more} "
        'Type the customer ID of the one you mean (or say "the first one"):\n\n'
        + "\n".join(rows),
        Conversation(
            customer_id=conversation.customer_id,
            choices=tuple(customer["customer_id"] for customer in found),
        ),
        "name-choices",
    )


def _pick(ordinal: str, conversation: Conversation, context: _Context) -> Reply:
    choices = conversation.choices
    index = len(choices) - 1 if ordinal == "last" else _ORDINALS.index(ordinal)
    if index >= len(choices):
        return Reply(
            f"The list had only {counted(len(choices), 'customer')}; type the "
            "customer ID of the one you mean.",
            conversation,
            "pick-out-of-range",
        )
    found = store.customers_by_id(context.connection, [choices[index]])
    if choices[index] not in found:
        return Reply(_unknown(choices[index], context), conversation, "unknown")
    return _about(found[choices[index]], None, context)


def _no_list(ordinal: str, context: _Context) -> str:
    return (
        f'There is no list in this conversation to pick "the {ordinal} one" '
        f'from. Ask for one first, e.g. "{escape(context.list_example())}" or a '
        'name that several customers share, then pick by ID or with "the first '
        'one".'
    )


# -- lists and figures ----------------------------------------------------------


def _level_word(word: str) -> str:
    return "free" if word.lower() == "free" else "paid"


def _filters(message: str, context: _Context) -> tuple[str | None, str | None]:
    """The level and the state a question names, if any."""
    named = _LEVEL.search(message)
    level = _level_word(named.group(1)) if named else None
    state = next(
        (
            code_
            for code_ in _STATE_CODE.findall(message)
            if code_ in context.snapshot.states
        ),
        None,
    )
    if state is None:
        lowered = message.lower()
        state = next(
            (
                code_
                for name, code_ in STATE_NAMES.items()
                if re.search(rf"\b{name}\b", lowered)
            ),
            None,
        )
    return level, state


def _who(level: str | None, state: str | None, noun: str = "customers") -> str:
    words = [level, noun] if level else [noun]
    if state:
        words.append(f"in {state}")
    return " ".join(words)


def _at_risk_list(
    message: str, size: int | None, context: _Context
) -> tuple[str, list[str]]:
    level, state = _filters(message, context)
    band_match = _BAND.search(message)
    band = next((g for g in band_match.groups() if g), None) if band_match else None
    asked = size or 10
    rows, total = store.at_risk(
        context.connection,
        limit=min(asked, MAX_LIST),
        level=level,
        state=state,
        band=band.lower() if band else None,
    )

    def who(noun: str) -> str:
        said = _who(level, state, noun)
        return escape(f"{said} at {band.lower()} risk" if band else said)

    if total == 0:
        return f"There are no scored active {who('customers')}.", []
    as_of = escape(context.facts.get("as_of", "?"))
    if total == 1:
        heading = f"**The only scored active {who('customer')}**, as of {as_of}:"
    elif len(rows) == total:
        heading = (
            f"**All {count(total)} scored active {who('customers')}**, most likely "
            f"to cancel first, as of {as_of}:"
        )
    else:
        listed = (
            who("customer") if len(rows) == 1 else f"{len(rows)} {who('customers')}"
        )
        capped = (
            f"; you asked for {count(asked)}, and a list holds at most {MAX_LIST}"
            if asked > MAX_LIST
            else ""
        )
        heading = (
            f"**The {listed} most likely to cancel** (of {count(total)} scored "
            f"active ones{capped}), as of {as_of}:"
        )
    lines = [
        heading,
        "",
        "| | customer | name | level | state | churn risk | top reason |",
        "|---:|---|---|---|---|---:|---|",
    ]
    for i, row in enumerate(rows.to_dict("records"), 1):
        lines.append(
            f"| {i} | {escape(row['customer_id'])} | "
            f"{name_of(row, masked=context.masked)} | {text(row['level'])} | "
            f"{text(row['state'])} | {percent(row['churn_probability'])} "
            f"({escape(row['risk_band'])}) | {text(row['reason_1'])} |"
        )
    lines += [
        "",
        'Type a customer ID from the list (or "the first one") to see their card.',
    ]
    return "\n".join(lines), list(rows["customer_id"])


def _list_range(size: int, context: _Context) -> str:
    return (
        f"A list holds 1 to {MAX_LIST} customers, so I cannot list {size}. Ask "
        f'for example "{escape(context.list_example())}".'
    )


def _period(message: str, as_of: dt.date) -> tuple[dt.date, dt.date, str] | None:
    """The days a question's period covers: ``[start, end)`` and how to say it."""
    lowered = message.lower()
    match = re.search(
        r"\b(?:last|past|previous)\s+(\d+)\s+(day|week|month)s?\b", lowered
    )
    if match:
        unit = {"day": 1, "week": 7, "month": 30}[match.group(2)]
        span = int(match.group(1)) * unit
    elif re.search(r"\b(last|past|this|previous)\s+week\b|\bin a week\b", lowered):
        span = 7
    elif re.search(r"\b(last|past|this|previous)\s+month\b", lowered):
        span = 30
    elif re.search(r"\byesterday\b|\btoday\b|\blast day\b", lowered):
        span = 1
    else:
        return None
    start = as_of - dt.timedelta(days=span)
    last = as_of - dt.timedelta(days=1)
    said = (
        f"on {last.isoformat()}"
        if span == 1
        else f"in the {span} days from {start.isoformat()} to {last.isoformat()}"
    )
    return start, as_of, said


def _how_many(message: str, context: _Context) -> str:
    level, state = _filters(message, context)
    as_of = context.as_of
    if _CANCELLED.search(message) and not _BAND.search(message):
        if level or state:
            return (
                "I can count cancellations for all customers only, not by level or "
                'state; ask "churn rate by level" or "churn rate by state" for '
                "those splits."
            )
        period = _period(message, as_of) if as_of else None
        if period is None:
            cancelled = sum(gone for _, gone, _ in context.snapshot.levels.values())
            first = context.snapshot.first_event_at
            since = f" since the logs began on {date(first)}" if first else ""
            return (
                f"**{count(cancelled)}** {plural(cancelled, 'customer')} "
                f"cancelled{since}, up to "
                f"{escape(context.facts.get('as_of', '?'))}."
            )
        start, end, said = period
        number = store.count_cancelled(
            context.connection, start.isoformat(), end.isoformat()
        )
        return f"**{count(number)}** {plural(number, 'customer')} cancelled {said}."

    band_match = _BAND.search(message)
    if band_match or re.search(r"\bat[- ]risk\b", message, re.I):
        band = (
            next(g for g in band_match.groups() if g).lower() if band_match else "high"
        )
        _, total = store.at_risk(
            context.connection, limit=0, level=level, state=state, band=band
        )
        floor = _BAND_FLOORS[band]
        noun = plural(total, "active customer")
        return (
            f"**{count(total)}** {escape(_who(level, state, noun))} "
            f"{'is' if total == 1 else 'are'} at {band} risk (a churn probability "
            f"of {floor:.0%} or more"
            + _band_ceiling(band)
            + f"), as of {escape(context.facts.get('as_of', '?'))}."
        )

    if state:
        _, total = store.at_risk(context.connection, limit=0, level=level, state=state)
        noun = plural(total, "active customer")
        return (
            f"**{count(total)}** {escape(_who(level, state, noun))} "
            f"{'has' if total == 1 else 'have'} a churn score."
        )
    levels = context.snapshot.levels
    if level:
        customers, _, active = levels.get(level, (0, 0, 0))
        return (
            f"**{count(active)}** {plural(active, f'active {level} customer')} "
            f"(not cancelled), as of {escape(context.facts.get('as_of', '?'))}."
        )
    customers = sum(total for total, _, _ in levels.values())
    active = sum(a for _, _, a in levels.values())
    return (
        f"**{count(customers)}** {plural(customers, 'customer')} in the logs: "
        f"**{count(active)}** active "
        f"and {count(customers - active)} cancelled, as of "
        f"{escape(context.facts.get('as_of', '?'))}."
    )


def _band_ceiling(band: str) -> str:
    bands = [name for name, _ in RISK_BANDS]
    position = bands.index(band)
    if position == 0:
        return ""
    return f" and under {_BAND_FLOORS[bands[position - 1]]:.0%}"


def _churn_rate(message: str, context: _Context) -> str:
    by = _BY.search(message)
    dimension = by.group(1).lower() if by else None
    dimension = {"plan": "level", "tier": "level", "subscription": "level"}.get(
        dimension, dimension
    )
    dimension = {"region": "state", "sex": "gender"}.get(dimension, dimension)
    first = context.snapshot.first_event_at
    span = (
        f"from {date(first)} to {escape(context.facts.get('as_of', '?'))}"
        if first
        else "in the logs"
    )
    rows = store.churn_rates(context.url, context.connection, context.facts, dimension)
    horizon = context.facts.get("horizon_days", "?")
    definition = (
        f"Churn rate: the share of customers seen in the logs ({span}) who "
        f"cancelled. Predicted: the mean churn probability of the active "
        f"customers, for the next {escape(horizon)} days."
    )
    if dimension is None:
        row = rows[0]
        predicted = (
            f" The model expects {percent(row['predicted'])} of the active customers "
            f"to cancel in the next {escape(horizon)} days."
            if row["predicted"] is not None
            else ""
        )
        return (
            f"**Churn rate: {percent(row['rate'])}** ({count(row['cancelled'])} of "
            f"{counted(row['customers'], 'customer')} cancelled, {span})."
            f"{predicted}"
        )
    label = {"level": "Level", "state": "State", "gender": "Gender"}[dimension]
    lines = [
        f"**Churn rate by {dimension}**",
        "",
        f"| {label} | customers | cancelled | churn rate | active | predicted |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        predicted = percent(row["predicted"]) if row["predicted"] is not None else "–"
        group = row["group"]
        if dimension == "gender":
            group = _GENDERS.get(group, group)
        customers, cancelled = row["customers"], row["cancelled"]
        cells = [
            text(group),
            count(customers),
            count(cancelled),
            percent(row["rate"]),
            count(customers - cancelled),
            predicted,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        " A cancelled customer counts at the level they had when they left."
        if dimension == "level"
        else ""
    )
    return "\n".join(lines) + f"\n\n{definition}{note}"


# -- help -----------------------------------------------------------------------


def _what_i_do(context: _Context) -> str:
    examples = context.examples()[:-1]
    listed = "\n".join(f"- {escape(example)}" for example in examples)
    return (
        "I answer from the serving database: a customer's card (profile, "
        "activity in the last 7 and 28 days against the 28 days before, churn "
        "risk, why, what to offer), follow-ups about that customer, look-ups by "
        "name, at-risk lists, counts and churn rates. For example:\n\n" + listed
    )


def _help(context: _Context) -> str:
    if not store.example_ids(context.connection):
        return (
            "The serving database holds no customers yet. Run `sparkify run` "
            "first, then ask again."
        )
    return _what_i_do(context)


def _how_to_ask(context: _Context) -> str:
    ids = store.example_ids(context.connection)
    if not ids:
        return (
            "The serving database holds no customers yet. Run `sparkify run` "
            "first, then ask again."
        )
    listed = ", ".join(f"`{escape(customer_id)}`" for customer_id in ids)
    return (
        f"Type a customer ID such as {listed}, or a question that contains "
        f'one, e.g. "customer {escape(ids[0])} is asking about ads".'
    )
