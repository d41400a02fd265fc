"""Realism report: how closely a generated Sparkify log matches a real one.

:func:`profile_logs` reads a JSON-lines event log (plain or gzip) in one
streaming pass and sums it up; :func:`compare` profiles a generated and a real
file and sets the figures side by side, each with its relative difference
``|generated - real| / |real|`` and a verdict: ``ok`` when that difference is
within the tolerance (20% unless told otherwise).

The figures, and how each is measured:

- ``page share: <page>``: events on the page / all events, for the 22
  Sparkify pages and any other page either file has; a page a file lacks
  counts 0. Rare pages are noisy, so a page share is also ``ok`` when the two
  shares differ by less than 0.0005 (0.05 percentage points) in absolute
  terms, whatever the relative difference.
- ``events per session (mean)`` and ``(median)``: a session is one
  ``sessionId``, with or without a user on its events (eventsim keeps one
  session counter for the whole file, and a session can log out and back in).
- ``sessions per user per week``: distinct ``(userId, sessionId)`` pairs with
  a non-empty ``userId``, divided by the users and by the weeks between the
  first and last event of the file. That is also the mean over users of each
  user's sessions per week, since every user is measured over the same span.
- ``paid event share``: events with ``level == "paid"`` / all events.
- ``empty userId share``: events with an empty (or null) ``userId`` / all
  events.
- ``churn rate``: users with a ``Cancellation Confirmation`` / users with any
  non-empty ``userId``.
- ``gap p10`` ... ``gap p90``: quantiles, in seconds, of the time between
  consecutive events of the same session, by linear interpolation between
  order statistics (numpy's default, ``statistics.quantiles`` with
  ``method="inclusive"``).

When the real value is 0 the relative difference is 0 if the generated value
is 0 too and undefined (``None``, not ``ok`` unless the page-share rule
applies) otherwise. A figure that cannot be measured (no gaps in a log of
one-event sessions, one timestamp only) is NaN and never ``ok``.

Memory grows with the sessions and users of a file, not its events: each
session keeps its event count and last timestamp, and gaps are tallied by
value, of which there are a few thousand for eventsim's whole-second
timestamps. Lines are split on ``\\n`` only, since song titles may hold
U+0085, and each session's events must come in time order, as eventsim and
:mod:`sparkify.generate` write them.
"""

from __future__ import annotations

import gzip
import logging
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    _DECODE_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - orjson ships with the project
    import json

    _loads = json.loads
    _DECODE_ERRORS = (json.JSONDecodeError, UnicodeDecodeError)

__all__ = [
    "DEFAULT_TOLERANCE",
    "GAP_QUANTILES",
    "PAGE_SHARE_ABSOLUTE_TOLERANCE",
    "PAGES",
    "Figure",
    "LogProfile",
    "RealismError",
    "RealismReport",
    "compare",
    "profile_logs",
]

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.2
# Page shares closer than this (0.05 percentage points) are ok whatever their
# relative difference: a page seen a few dozen times in 263k events is noise.
PAGE_SHARE_ABSOLUTE_TOLERANCE = 0.0005
GAP_QUANTILES = (10, 25, 50, 75, 90)

# The 22 pages of eventsim's music-site template, most frequent first.
PAGES = (
    "NextSong",
    "Home",
    "Thumbs Up",
    "Add to Playlist",
    "Add Friend",
    "Roll Advert",
    "Login",
    "Logout",
    "Thumbs Down",
    "Downgrade",
    "Help",
    "Settings",
    "About",
    "Upgrade",
    "Save Settings",
    "Error",
    "Submit Upgrade",
    "Submit Downgrade",
    "Cancel",
    "Cancellation Confirmation",
    "Register",
    "Submit Registration",
)

_CONFIRMATION = "Cancellation Confirmation"
_REQUIRED = frozenset({"ts", "sessionId", "page"})
_PAGE_PREFIX = "page share: "
_SHARE_FIGURES = {"paid event share", "empty userId share", "churn rate"}
_WEEK_MS = 7 * 86_400 * 1_000
_GZIP_MAGIC = b"\x1f\x8b"


class RealismError(ValueError):
    """A log cannot be profiled (missing, unreadable or not JSON lines) or an
    argument to :func:`compare` is invalid."""


@dataclass(frozen=True)
class LogProfile:
    """What one pass over an event log found; the figures are derived from it.

    Attributes
    ----------
    path
        The file profiled.
    events
        Events (non-blank lines) in the file.
    page_counts
        Events per ``page``.
    paid_events
        Events with ``level == "paid"``.
    empty_user_events
        Events with an empty or null ``userId``.
    sessions
        Distinct ``sessionId`` values.
    events_per_session_mean, events_per_session_median
        Events per ``sessionId``.
    user_sessions
        Distinct ``(userId, sessionId)`` pairs with a non-empty ``userId``.
    users
        Distinct non-empty ``userId`` values.
    churners
        Users with a ``Cancellation Confirmation`` event.
    first_ts, last_ts
        Earliest and latest ``ts``, epoch milliseconds.
    gap_quantiles
        Seconds between consecutive events of a session, by percentile
        (10, 25, 50, 75, 90); NaN when no session has two events.
    """

    path: Path
    events: int
    page_counts: Mapping[str, int]
    paid_events: int
    empty_user_events: int
    sessions: int
    events_per_session_mean: float
    events_per_session_median: float
    user_sessions: int
    users: int
    churners: int
    first_ts: float
    last_ts: float
    gap_quantiles: Mapping[int, float]

    @property
    def weeks(self) -> float:
        """Weeks between the first and the last event."""
        return (self.last_ts - self.first_ts) / _WEEK_MS

    @property
    def sessions_per_user_per_week(self) -> float:
        """User sessions / users / weeks spanned; NaN without users or span."""
        if self.users == 0 or self.last_ts == self.first_ts:
            return math.nan
        return self.user_sessions / self.users / self.weeks

    @property
    def churn_rate(self) -> float:
        """Users who cancelled / users; NaN without users."""
        return self.churners / self.users if self.users else math.nan

    def page_share(self, page: str) -> float:
        """Share of all events on ``page`` (0 for a page not in the file)."""
        return self.page_counts.get(page, 0) / self.events

    def figures(self, pages: tuple[str, ...] = PAGES) -> dict[str, float]:
        """Every figure of the report by name, page shares for ``pages`` first."""
        values = {_PAGE_PREFIX + page: self.page_share(page) for page in pages}
        values["events per session (mean)"] = self.events_per_session_mean
        values["events per session (median)"] = self.events_per_session_median
        values["sessions per user per week"] = self.sessions_per_user_per_week
        values["paid event share"] = self.paid_events / self.events
        values["empty userId share"] = self.empty_user_events / self.events
        values["churn rate"] = self.churn_rate
        for percent, seconds in self.gap_quantiles.items():
            values[f"gap p{percent} (s)"] = seconds
        return values


@dataclass(frozen=True)
class Figure:
    """One figure of a report: both values, how far apart, and the verdict."""

    name: str
    generated: float
    real: float
    relative_difference: float | None
    ok: bool


@dataclass(frozen=True)
class RealismReport:
    """Figures of a generated log beside those of a real one.

    ``ok`` is true when every figure is within ``tolerance``; ``to_text`` is
    the table for a terminal.
    """

    generated: Path
    real: Path
    tolerance: float
    figures: list[Figure]

    @property
    def ok(self) -> bool:
        """Whether every figure is within the tolerance."""
        return all(figure.ok for figure in self.figures)

    def to_text(self) -> str:
        """A fixed-width table: a header naming both files, one row per figure,
        and a closing line counting the figures within the tolerance."""
        tolerance = _percent(self.tolerance)
        width = max(len("figure"), *(len(figure.name) for figure in self.figures))
        lines = [
            f"Realism report: generated {self.generated} vs real {self.real}",
            f"ok when |generated - real| / |real| <= {tolerance}; a page share is"
            " also ok when the two",
            f"shares differ by less than {PAGE_SHARE_ABSOLUTE_TOLERANCE * 100:g}"
            " percentage points (rare pages are noisy).",
            "",
            f"{'figure':<{width}}  {'generated':>10}  {'real':>10}  "
            f"{'rel. diff':>9}  verdict",
            "-" * (width + 45),
        ]
        for figure in self.figures:
            difference = (
                "n/a"
                if figure.relative_difference is None
                else f"{figure.relative_difference * 100:.1f}%"
            )
            lines.append(
                f"{figure.name:<{width}}  "
                f"{_formatted(figure.name, figure.generated):>10}  "
                f"{_formatted(figure.name, figure.real):>10}  "
                f"{difference:>9}  {'ok' if figure.ok else 'off'}"
            )
        within = sum(figure.ok for figure in self.figures)
        lines.append("-" * (width + 45))
        lines.append(f"{within} of {len(self.figures)} figures within {tolerance}")
        return "\n".join(lines)


def profile_logs(path: str | Path) -> LogProfile:
    """Profile a JSON-lines Sparkify log (gzip or plain) in one streaming pass.

    Raises
    ------
    RealismError
        The file is missing or unreadable, holds no events, has a line that
        is not a JSON object with ``ts``, ``sessionId`` and ``page``, or has a
        session whose events go back in time. Line errors give the line
        number.
    """
    began = time.perf_counter()
    path = Path(path).expanduser()
    if not path.is_file():
        raise RealismError(
            f"path: {str(path)!r} is not a file; name an existing .jsonl or "
            ".jsonl.gz event log"
        )
    log.info("profiling %s", path)

    events = paid_events = empty_user_events = 0
    page_counts: Counter[str] = Counter()
    # sessionId -> [events so far, ts of the latest event]
    sessions: dict[Any, list[int]] = {}
    user_sessions: set[tuple[str, Any]] = set()
    users: set[str] = set()
    churners: set[str] = set()
    gaps_ms: Counter[float] = Counter()
    first_ts = last_ts = 0

    for number, event in _events(path):
        ts, session_id, page = event["ts"], event["sessionId"], event["page"]
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            raise RealismError(
                f"{path}, line {number}: ts must be epoch milliseconds, got {ts!r}"
            )
        if events == 0:
            first_ts = last_ts = ts
        first_ts = min(first_ts, ts)
        last_ts = max(last_ts, ts)
        events += 1
        page_counts[page] += 1
        if event.get("level") == "paid":
            paid_events += 1

        user_id = event.get("userId")
        if user_id is None or user_id == "":
            empty_user_events += 1
        else:
            user_id = str(user_id)
            users.add(user_id)
            user_sessions.add((user_id, session_id))
            if page == _CONFIRMATION:
                churners.add(user_id)

        session = sessions.get(session_id)
        if session is None:
            sessions[session_id] = [1, ts]
            continue
        if ts < session[1]:
            raise RealismError(
                f"{path}, line {number}: session {session_id!r} goes back in "
                f"time (ts {ts!r} after {session[1]!r}); sort the file by ts"
            )
        gaps_ms[ts - session[1]] += 1
        session[0] += 1
        session[1] = ts

    if events == 0:
        raise RealismError(f"path: {str(path)!r} holds no events")
    counts = [session[0] for session in sessions.values()]
    profile = LogProfile(
        path=path,
        events=events,
        page_counts=dict(page_counts),
        paid_events=paid_events,
        empty_user_events=empty_user_events,
        sessions=len(sessions),
        events_per_session_mean=events / len(sessions),
        events_per_session_median=float(statistics.median(counts)),
        user_sessions=len(user_sessions),
        users=len(users),
        churners=len(churners),
        first_ts=first_ts,
        last_ts=last_ts,
        gap_quantiles={
            percent: _quantile(gaps_ms, percent / 100) / 1_000
            for percent in GAP_QUANTILES
        },
    )
    log.info(
        "profiled %d events, %d sessions, %d users in %s in %.1f s",
        events,
        len(sessions),
        len(users),
        path,
        time.perf_counter() - began,
    )
    return profile


def compare(
    generated: str | Path, real: str | Path, *, tolerance: float = DEFAULT_TOLERANCE
) -> RealismReport:
    """Profile ``generated`` and ``real`` and set their figures side by side.

    Parameters
    ----------
    generated
        Event log from :mod:`sparkify.generate` (or any log to judge).
    real
        Event log to judge it against, such as ``eventsim_small.jsonl.gz``.
    tolerance
        Largest relative difference ``|generated - real| / |real|`` that is
        ``ok``; page shares are also ``ok`` within 0.0005 absolute.
    """
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise RealismError(
            f"tolerance must be a finite number >= 0 (0.2 is 20%), got {tolerance!r}"
        )
    generated_profile = profile_logs(generated)
    real_profile = profile_logs(real)

    extra = sorted(
        (set(generated_profile.page_counts) | set(real_profile.page_counts))
        - set(PAGES)
    )
    pages = PAGES + tuple(extra)
    generated_values = generated_profile.figures(pages)
    real_values = real_profile.figures(pages)
    figures = [
        _figure(name, generated_values[name], real_values[name], tolerance)
        for name in generated_values
    ]
    report = RealismReport(
        generated=generated_profile.path,
        real=real_profile.path,
        tolerance=float(tolerance),
        figures=figures,
    )
    log.info(
        "%d of %d figures within %s",
        sum(figure.ok for figure in figures),
        len(figures),
        _percent(tolerance),
    )
    return report


def _events(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, event)`` for each non-blank line of ``path``.

    Binary lines end at ``\\n`` only, so U+0085 inside a string stays put.
    """
    number = 0
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    event = _loads(line)
                except _DECODE_ERRORS as exc:
                    raise RealismError(
                        f"{path}, line {number}: not JSON ({exc}); each line "
                        "must be one JSON event"
                    ) from None
                if not isinstance(event, dict) or not _REQUIRED <= event.keys():
                    raise RealismError(
                        f"{path}, line {number}: not a Sparkify event (a JSON "
                        f"object with ts, sessionId and page): {line[:80]!r}"
                    )
                yield number, event
    except (OSError, EOFError) as exc:
        raise RealismError(
            f"{path}, after line {number}: cannot read the file ({exc})"
        ) from None


def _open(path: Path) -> IO[bytes]:
    """``path`` opened for binary reading, decompressed if it is gzip."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return path.open("rb")


def _quantile(counts: Counter[float], q: float) -> float:
    """Quantile ``q`` of the values tallied in ``counts``, interpolating
    linearly between order statistics; NaN when there are none."""
    total = sum(counts.values())
    if total == 0:
        return math.nan
    values = sorted(counts)

    def at_rank(rank: int) -> float:
        seen = 0
        for value in values:
            seen += counts[value]
            if seen > rank:
                return value
        raise AssertionError(f"rank {rank} is past {total} tallied values")

    position = q * (total - 1)
    low_rank = math.floor(position)
    low = at_rank(low_rank)
    if position == low_rank:
        return low
    return low + (at_rank(low_rank + 1) - low) * (position - low_rank)


def _figure(name: str, generated: float, real: float, tolerance: float) -> Figure:
    """One row of the report with its relative difference and verdict."""
    if math.isnan(generated) or math.isnan(real):
        return Figure(name, generated, real, None, False)
    if real == 0:
        relative = 0.0 if generated == 0 else None
    else:
        relative = abs(generated - real) / abs(real)
    ok = relative is not None and relative <= tolerance
    if name.startswith(_PAGE_PREFIX):
        ok = ok or abs(generated - real) < PAGE_SHARE_ABSOLUTE_TOLERANCE
    return Figure(name, generated, real, relative, ok)


def _formatted(name: str, value: float) -> str:
    """A figure's value for the table: shares in percent, the rest plain."""
    if math.isnan(value):
        return "n/a"
    if name.startswith(_PAGE_PREFIX) or name in _SHARE_FIGURES:
        return f"{value * 100:.3f}%"
    return f"{value:.2f}"


def _percent(fraction: float) -> str:
    """``0.2`` as ``20%``."""
    return f"{fraction * 100:g}%"
