"""A corpus of bad (and merely odd) log inputs, each with the outcome it must get.

Every case is one log file: a good event before and after the line under
test, so a case also shows that its neighbours survive. ``expected`` is one of

- ``accepted``: every event is taken in (``warning`` names an expectation
  that reports it without stopping the run);
- ``rejected``: ingestion turns the odd line(s) away with a reason containing
  ``reason``, the rest are taken in;
- ``stopped``: the critical expectation ``expectation`` of the events suite
  stops the batch, naming the file and line; nothing is taken in;
- ``unreadable``: the file cannot be read at all; the run stops naming it.

``tests/test_bad_inputs.py`` runs them through ingestion and the events gate.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CASES", "Case", "event_line"]

_BASE = {
    "ts": 1538352139000,
    "userId": "156",
    "sessionId": 155,
    "page": "NextSong",
    "auth": "Logged In",
    "method": "PUT",
    "status": 200,
    "level": "free",
    "itemInSession": 1,
    "location": "Baton Rouge, LA",
    "userAgent": '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4)"',
    "lastName": "Carroll",
    "firstName": "Ishaan",
    "registration": 1537324931000,
    "gender": "M",
    "artist": "Serj Tankian",
    "song": "Saving Us",
    "length": 281.46893,
}
_SONG_FIELDS = ("artist", "song", "length")
_USER_FIELDS = ("firstName", "lastName", "gender", "location", "userAgent")


def event_line(item: int = 1, **changes: object) -> str:
    """One eventsim-shaped line; ``None`` in ``changes`` leaves a field out."""
    event = {**_BASE, "itemInSession": item, "ts": _BASE["ts"] + item * 1000}
    event.update(changes)
    return json.dumps(
        {k: v for k, v in event.items() if v is not None}, ensure_ascii=False
    )


def _page(page: str, item: int = 1, **changes: object) -> str:
    """A non-song page: song fields left out, as eventsim writes it."""
    no_song = dict.fromkeys(_SONG_FIELDS)
    return event_line(item, **{**no_song, "page": page, **changes})


def _guest(item: int = 1, **changes: object) -> str:
    """A guest's Home page: no id, no user fields, no song."""
    fields = dict.fromkeys((*_SONG_FIELDS, *_USER_FIELDS, "registration"))
    guest = {"page": "Home", "auth": "Guest", "userId": ""}
    return event_line(item, **{**fields, **guest, **changes})


@dataclass(frozen=True)
class Case:
    """One input file and what must become of it."""

    name: str
    build: Callable[[], bytes]
    expected: str
    suffix: str = ".jsonl"
    # accepted: events taken in; rejected: lines turned away.
    count: int = 0
    reason: str = ""
    expectation: str = ""
    warning: str = ""
    # 1-based line of the offending event, for stopped cases.
    line: int = 2

    def file_bytes(self, session: int | None = None) -> bytes:
        """The file's bytes, its events moved to ``session`` when given.

        Every case writes its events in the same session, so two cases read
        in one batch would be each other's duplicates; giving each case a
        session of its own keeps them apart.
        """
        data = self.build()
        if session is None:
            return data
        ours = b'"sessionId": %d' % _BASE["sessionId"]
        theirs = b'"sessionId": %d' % session
        if self.suffix.endswith(".gz"):
            return gzip.compress(gzip.decompress(data).replace(ours, theirs))
        return data.replace(ours, theirs)


def _around(*middle: str, end: str = "\n") -> Callable[[], bytes]:
    """Good line, the lines under test, good line; UTF-8, newline-terminated."""
    lines = [event_line(0), *middle, event_line(90)]
    return lambda: ("\n".join(lines) + end).encode("utf-8")


def _latin1(line: str) -> Callable[[], bytes]:
    """A line written in Latin-1 between two UTF-8 ones."""
    good = [event_line(0).encode("utf-8"), event_line(90).encode("utf-8")]
    data = b"\n".join([good[0], line.encode("latin-1"), good[1]]) + b"\n"
    return lambda: data


def _raw(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _gzip(text: str, keep: float = 1.0) -> Callable[[], bytes]:
    data = gzip.compress(text.encode("utf-8"))
    return lambda: data[: int(len(data) * keep)]


_GOOD = "\n".join(event_line(i) for i in range(200)) + "\n"

CASES: tuple[Case, ...] = (
    # ----------  accepted as they are
    Case(
        "udacity_shape",
        _around(
            '{"artist":null,"auth":"Logged In","firstName":"Walter","gender":"M",'
            '"itemInSession":0,"lastName":"Frye","length":null,"level":"free",'
            '"location":"San Francisco-Oakland-Hayward, CA","method":"GET",'
            '"page":"Home","registration":1540919166796.0,"sessionId":38,'
            '"song":null,"status":200,"ts":1541105830796,'
            '"userAgent":"Mozilla\\/5.0 (Macintosh)","userId":"39"}'
        ),
        "accepted",
        count=3,
    ),
    Case("guest_event", _around(_guest(5)), "accepted", count=3),
    Case(
        "mojibake_name", _around(event_line(5, firstName="JosÃ©")), "accepted", count=3
    ),
    Case(
        "next_line_character_in_a_title",
        _around(event_line(5, song="Fl\u0085ight")),
        "accepted",
        count=3,
    ),
    Case(
        "utf8_byte_order_mark",
        lambda: b"\xef\xbb\xbf" + _around()(),
        "accepted",
        count=2,
    ),
    Case(
        "crlf_line_ends",
        lambda: _around(event_line(5))().replace(b"\n", b"\r\n"),
        "accepted",
        count=3,
    ),
    Case("no_trailing_newline", _around(event_line(5), end=""), "accepted", count=3),
    Case("empty_file", _raw(b""), "accepted", count=0),
    Case("gzip_file", _gzip(_GOOD), "accepted", count=200, suffix=".jsonl.gz"),
    # ----------  accepted, with a warning for reviewers
    Case(
        "unknown_http_status",
        _around(event_line(5, status=500)),
        "accepted",
        count=3,
        warning="expect_column_values_to_be_in_set(status)",
    ),
    Case(
        "unknown_http_method",
        _around(_page("Home", 5, method="DELETE")),
        "accepted",
        count=3,
        warning="expect_column_values_to_be_in_set(method)",
    ),
    Case(
        "unknown_gender",
        _around(event_line(5, gender="X")),
        "accepted",
        count=3,
        warning="expect_column_values_to_be_in_set(gender)",
    ),
    Case(
        "song_on_a_non_song_page",
        _around(event_line(5, page="Home")),
        "accepted",
        count=3,
        warning="expect_column_values_to_be_null(song)",
    ),
    # ----------  rejected by ingestion, with a reason
    Case(
        "truncated_line",
        _around('{"ts":1538352139000,"userId":"1","sessi'),
        "rejected",
        count=1,
        reason="not valid JSON",
    ),
    Case(
        "wrong_type_ts",
        _around(event_line(5, ts="yesterday")),
        "rejected",
        count=1,
        reason="field 'ts' should be a number",
    ),
    Case(
        "fractional_session",
        _around(event_line(5, sessionId=1.5)),
        "rejected",
        count=1,
        reason="field 'sessionId' should be a whole number",
    ),
    Case(
        "missing_ts",
        _around(event_line(5, ts=None)),
        "rejected",
        count=1,
        reason="missing field 'ts'",
    ),
    Case(
        "missing_page",
        _around(event_line(5, page=None)),
        "rejected",
        count=1,
        reason="missing field 'page'",
    ),
    Case(
        "not_an_object",
        _around('["NextSong", 1538352139000]'),
        "rejected",
        count=1,
        reason="not a JSON object",
    ),
    Case("blank_lines", _around("", "   "), "rejected", count=2, reason="blank line"),
    Case(
        "huge_line",
        _around(event_line(5, song="la" * 60_000)),
        "rejected",
        count=1,
        reason="characters long; an event is at most 100,000",
    ),
    Case(
        "non_utf8_bytes",
        _latin1(event_line(5, firstName="José")),
        "rejected",
        count=1,
        reason="not valid UTF-8",
    ),
    Case(
        "duplicate_event",
        _around(event_line(5), event_line(5)),
        "rejected",
        count=1,
        reason="duplicate of line 2 of",
    ),
    # ----------  stopped by a critical expectation of the events suite
    Case(
        "unknown_page",
        _around(_page("Podcast", 5)),
        "stopped",
        expectation="expect_column_values_to_be_in_set(page)",
    ),
    # Spark reads an object where text belongs as the object's JSON text; for
    # a coded field like page that text is then an unknown value.
    Case(
        "text_field_holds_an_object",
        _around(event_line(5, page={"a": 1})),
        "stopped",
        expectation="expect_column_values_to_be_in_set(page)",
    ),
    Case(
        "unknown_auth",
        _around(event_line(5, auth="Admin")),
        "stopped",
        expectation="expect_column_values_to_be_in_set(auth)",
    ),
    Case(
        "unknown_level",
        _around(event_line(5, level="premium")),
        "stopped",
        expectation="expect_column_values_to_be_in_set(level)",
    ),
    Case(
        "negative_length",
        _around(event_line(5, length=-12.5)),
        "stopped",
        expectation="expect_column_values_to_be_between(length)",
    ),
    Case(
        "future_timestamp",
        _around(event_line(5, ts=4102444800000)),
        "stopped",
        expectation="expect_column_values_to_be_between(ts)",
    ),
    Case(
        "zero_timestamp",
        _around(event_line(5, ts=0)),
        "stopped",
        expectation="expect_column_values_to_be_between(ts)",
    ),
    Case(
        "timestamp_in_seconds",
        _around(event_line(5, ts=1538352139)),
        "stopped",
        expectation="expect_column_values_to_be_between(ts)",
    ),
    Case(
        "registration_in_the_future",
        _around(event_line(5, registration=4102444800000)),
        "stopped",
        expectation="expect_column_values_to_be_between(registration)",
    ),
    Case(
        "user_id_on_a_guest_event",
        _around(_guest(5, userId="77")),
        "stopped",
        expectation="expect_column_values_to_be_in_set(userId)",
    ),
    Case(
        "empty_user_id_while_logged_in",
        _around(event_line(5, userId="")),
        "stopped",
        expectation="expect_column_values_to_not_be_in_set(userId)",
    ),
    Case(
        "song_play_without_its_song",
        _around(event_line(5, song=None)),
        "stopped",
        expectation="expect_column_values_to_not_be_null(song)",
    ),
    # ----------  files that cannot be read at all
    Case(
        "truncated_gzip",
        _gzip(_GOOD * 40, keep=0.5),
        "unreadable",
        suffix=".jsonl.gz",
        reason="ends before its last gzip block",
    ),
    Case(
        "plain_text_named_gz",
        _around(),
        "unreadable",
        suffix=".jsonl.gz",
        reason="not gzip-compressed",
    ),
)
