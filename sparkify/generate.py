"""Deterministic generator of Sparkify-format event logs with planted churn.

The output imitates eventsim's music-site logs (``eventsim_small.jsonl.gz``):
the same keys in the same order, keys left out where they do not apply,
logged-out and guest events without a user, one session counter for the
whole file, and no newline after the last line. Each user is simulated on
its own random stream and the per-user streams are merged in time order, so
memory stays small however long the window is.

About ``churn_rate`` of the users cancel inside the window. In the three to
six weeks before cancelling they fade (fewer and shorter sessions) and get
more and more frustrated (more Thumbs Down, Roll Advert, Error, Help,
Downgrade and Settings), so the signs show before a two-week horizon starts.
Some users who stay also go quiet, so the signal is not perfect.
The hidden truth is written next to the events as ``<stem>.ground_truth.csv``.

Big logs are made in parallel and can be sized by bytes. A first pass
simulates every user to find when each session starts (and how many bytes
the lines will take); the session ids are numbered from those start times
for the whole log at once. A second pass simulates the users again, in
worker processes that each take a contiguous range of users, and writes the
lines: into one shard file per range, or streamed to this process, which
merges the ranges in time order into a single file. Both passes draw from
the same per-user random streams, so the lines are the same whatever the
number of shards or workers.
"""

from __future__ import annotations

import bisect
import csv
import functools
import gzip
import heapq
import io
import itertools
import json
import logging
import math
import multiprocessing
import operator
import os
import pickle
import queue
import random
import re
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["GenerateError", "GenerateSummary", "generate"]

log = logging.getLogger(__name__)

_HOUR = 3_600
_DAY = 86_400

# Uncompressed bytes of events per user per day of the window, measured once
# on 20,000 users over 60 days (seed 42, churn_rate 0.22): the first guess
# of the user count when the caller asks for a size.
_BYTES_PER_USER_DAY = 6_845
# Sizing stops once the estimated bytes are this close to the target.
_SIZE_TOLERANCE = 0.02
_SIZE_ATTEMPTS = 8
_SIZE_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_SIZE_PATTERN = re.compile(
    r"(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt]i?)b?|b)?", re.IGNORECASE
)
# Bytes of a line besides its values: the keys, quotes, braces and newline
# around ts, userId, sessionId and itemInSession.
_LINE_OVERHEAD = len('{"ts":,"userId":"","sessionId":","itemInSession":}\n')
# gzip level 3, the last of zlib's fast levels: 7.8x smaller at 184 MB/s on
# one core of this machine (level 1: 7.2x at 199 MB/s; gzip's default, 6:
# 9.8x at 95 MB/s, which would make it the slowest step).
_GZIP_LEVEL = 3
# With workers=None, at most one process per this many users: for fewer,
# starting processes costs more than it saves.
_USERS_PER_PROCESS = 1_000
_LINES_PER_BLOCK = 8_192
# Blocks of lines read ahead from each worker that streams to this process.
_BLOCKS_AHEAD = 8

_LOGGED_IN = "Logged In"
_LOGGED_OUT = "Logged Out"
_GUEST = "Guest"
_CANCELLED = "Cancelled"

# Method and status per page, as eventsim writes them.
_PAGES: dict[str, tuple[str, int]] = {
    "NextSong": ("PUT", 200),
    "Home": ("GET", 200),
    "Thumbs Up": ("PUT", 307),
    "Add to Playlist": ("PUT", 200),
    "Add Friend": ("PUT", 307),
    "Roll Advert": ("GET", 200),
    "Login": ("PUT", 307),
    "Logout": ("PUT", 307),
    "Thumbs Down": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Help": ("GET", 200),
    "Settings": ("GET", 200),
    "About": ("GET", 200),
    "Upgrade": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Error": ("GET", 404),
    "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307),
    "Cancel": ("PUT", 307),
    "Cancellation Confirmation": ("GET", 200),
    "Register": ("GET", 200),
    "Submit Registration": ("PUT", 307),
}

# The middle of a line, from the page up to the opening quote of the level.
_FRAG: dict[tuple[str, str], str] = {
    (page, auth): (
        f',"page":"{page}","auth":"{auth}","method":"{method}",'
        f'"status":{status},"level":"'
    )
    for page, (method, status) in _PAGES.items()
    for auth in (_LOGGED_IN, _LOGGED_OUT, _GUEST, _CANCELLED)
}
_CONFIRMATION_FRAG = _FRAG["Cancellation Confirmation", _CANCELLED]

# Relative session-start intensity per UTC hour and per weekday (Monday
# first), shaped after eventsim_small.jsonl.gz; the peak of each is 1.
_HOUR_WEIGHT = (
    0.33, 0.32, 0.32, 0.36, 0.34, 0.31, 0.33, 0.35, 0.37, 0.43, 0.41, 0.48,
    0.64, 0.79, 0.91, 1.00, 0.78, 0.52, 0.44, 0.46, 0.37, 0.42, 0.30, 0.31,
)  # fmt: skip
_WEEKDAY_WEIGHT = (0.78, 0.97, 0.94, 1.00, 0.84, 0.59, 0.44)
_MEAN_ACCEPT = (sum(_HOUR_WEIGHT) / 24) * (sum(_WEEKDAY_WEIGHT) / 7)

# Pages a logged-in user may visit after any event, with the chance per
# event for a free and a paid user, and how frustration scales that chance
# (the chance is multiplied by 1 + coefficient * frustration).
_ACTIONS: tuple[tuple[str, float, float, float], ...] = (
    ("Thumbs Up", 0.044, 0.044, -0.5),
    ("Add to Playlist", 0.025, 0.025, -0.5),
    ("Add Friend", 0.016, 0.016, -0.5),
    ("Home", 0.020, 0.020, 0.0),
    ("Roll Advert", 0.040, 0.0008, 1.5),
    ("Logout", 0.0115, 0.0115, 0.0),
    ("Thumbs Down", 0.0062, 0.0062, 2.5),
    ("Downgrade", 0.0, 0.0100, 3.0),
    ("Upgrade", 0.0070, 0.0, -0.8),
    ("Help", 0.0048, 0.0048, 2.5),
    ("Settings", 0.0050, 0.0050, 2.5),
    ("About", 0.0018, 0.0018, 0.0),
    ("Error", 0.0009, 0.0009, 3.0),
)
_SUBMIT_UPGRADE = 0.32
_SUBMIT_DOWNGRADE = 0.03
_SAVE_SETTINGS = 0.2

# The page a churner visits just before Cancel, by level.
_BEFORE_CANCEL = {
    "paid": (("Downgrade", 0.65), ("Settings", 0.3), ("Thumbs Down", 0.05)),
    "free": (("Roll Advert", 0.6), ("Settings", 0.3), ("Thumbs Down", 0.1)),
}

# Pages seen while logged out or as a guest, with weights.
_LOGGED_OUT_PAGES = (("Home", 0.55), ("About", 0.28), ("Help", 0.15), ("Error", 0.02))
_GUEST_PAGES = (
    ("Home", 0.42),
    ("About", 0.15),
    ("Help", 0.15),
    ("Register", 0.24),
    ("Error", 0.04),
)

# New registrations per existing user per day, and guest visits that never
# register, per user per day.
_NEW_USERS_PER_USER_DAY = 0.0006
_GUEST_VISITS_PER_USER_DAY = 0.00035
# Free users start fewer sessions than paying ones.
_LEVEL_ACTIVITY = {"free": 0.55, "paid": 1.0}
# Share of non-churners who go quiet at some point in the window.
_QUIET_SHARE = 0.10
# Frustration of a churner at the end of the fade; it grows with the fade.
_CHURNER_FRUSTRATION = 2.0

_FIRST_NAMES_M = (
    "Aiden", "Benjamin", "Brayden", "Carlos", "Colin", "Daniel", "Diego",
    "Elijah", "Ethan", "Gavin", "Hassan", "Hunter", "Isaac", "Jackson",
    "Jalen", "Jayden", "Kaleb", "Liam", "Logan", "Lucas", "Malachi", "Mason",
    "Matthew", "Micah", "Noah", "Nolan", "Owen", "Quentin", "Ryan", "Samuel",
    "Tristan", "Tyler", "William", "Zachary", "Ziad", "José", "Björn",
    "Ángel", "Søren", "Joaquín", "Raphaël", "Jürgen",
)  # fmt: skip
_FIRST_NAMES_F = (
    "Abigail", "Alayna", "Allison", "Amelia", "Aubrey", "Autumn", "Ava",
    "Brooklyn", "Charlotte", "Delilah", "Ella", "Emma", "Fatima", "Gianna",
    "Hailey", "Harper", "Isabella", "Kayla", "Lauren", "Leah", "Lillian",
    "Maya", "Mckenzie", "Natalie", "Nevaeh", "Olivia", "Quinn", "Rylee",
    "Samantha", "Sophia", "Trinity", "Zoey", "Zoë", "Chloé", "Renée",
    "Inés", "Maëlle", "Sigrún", "Ximena", "Anaïs",
)  # fmt: skip
_LAST_NAMES = (
    "Adams", "Allen", "Anderson", "Baker", "Banks", "Bryant", "Campbell",
    "Carroll", "Clark", "Cook", "Cross", "Davis", "Dixon", "Fisher",
    "Freeman", "Garcia", "Gilbert", "Hall", "Harris", "Hernandez", "Jackson",
    "Jenkins", "Johnson", "Jones", "Kelly", "Knight", "Lee", "Lewis",
    "Lopez", "Martin", "Martinez", "Miller", "Moore", "Morgan", "Nelson",
    "Nguyen", "Owens", "Parker", "Perez", "Peterson", "Phillips", "Price",
    "Ramirez", "Roberts", "Robinson", "Rodriguez", "Russell", "Santos",
    "Smith", "Snyder", "Stone", "Taylor", "Thomas", "Turner", "Walker",
    "Watson", "White", "Williams", "Wilson", "Zhang", "Muñoz", "Peña",
    "Ibáñez", "Müller", "Søndergaard", "Nuñez", "Gómez", "O'Connor",
)  # fmt: skip
# (location, weight): metropolitan areas as eventsim names them.
_LOCATIONS = (
    ("New York-Newark-Jersey City, NY-NJ-PA", 9),
    ("Los Angeles-Long Beach-Anaheim, CA", 7),
    ("Chicago-Naperville-Elgin, IL-IN-WI", 5),
    ("Dallas-Fort Worth-Arlington, TX", 4),
    ("Houston-The Woodlands-Sugar Land, TX", 4),
    ("Philadelphia-Camden-Wilmington, PA-NJ-DE-MD", 4),
    ("Washington-Arlington-Alexandria, DC-VA-MD-WV", 4),
    ("Miami-Fort Lauderdale-West Palm Beach, FL", 4),
    ("Atlanta-Sandy Springs-Roswell, GA", 3),
    ("Boston-Cambridge-Newton, MA-NH", 3),
    ("San Francisco-Oakland-Hayward, CA", 3),
    ("Phoenix-Mesa-Scottsdale, AZ", 3),
    ("Riverside-San Bernardino-Ontario, CA", 3),
    ("Detroit-Warren-Dearborn, MI", 2),
    ("Seattle-Tacoma-Bellevue, WA", 2),
    ("Minneapolis-St. Paul-Bloomington, MN-WI", 2),
    ("Tampa-St. Petersburg-Clearwater, FL", 2),
    ("Denver-Aurora-Lakewood, CO", 2),
    ("St. Louis, MO-IL", 2),
    ("Baltimore-Columbia-Towson, MD", 2),
    ("Charlotte-Concord-Gastonia, NC-SC", 2),
    ("Portland-Vancouver-Hillsboro, OR-WA", 2),
    ("San Antonio-New Braunfels, TX", 2),
    ("Sacramento--Roseville--Arden-Arcade, CA", 1),
    ("Nashville-Davidson--Murfreesboro--Franklin, TN", 1),
    ("Kansas City, MO-KS", 1),
    ("Memphis, TN-MS-AR", 1),
    ("Louisville/Jefferson County, KY-IN", 1),
    ("Salt Lake City, UT", 1),
    ("Raleigh, NC", 1),
    ("Richmond, VA", 1),
    ("Tucson, AZ", 1),
    ("Tulsa, OK", 1),
    ("Fresno, CA", 1),
    ("Baton Rouge, LA", 1),
    ("Boise City, ID", 1),
    ("Albany, GA", 1),
    ("Asheville, NC", 1),
    ("Boulder, CO", 1),
    ("Cedar Rapids, IA", 1),
    ("Columbus, OH", 1),
    ("Columbus, NE", 1),
    ("Dayton, OH", 1),
    ("Fort Smith, AR-OK", 1),
    ("Huntington-Ashland, WV-KY-OH", 1),
    ("Jacksonville, FL", 1),
    ("Knoxville, TN", 1),
    ("Medford, OR", 1),
    ("Peoria, IL", 1),
    ("Reno, NV", 1),
    ("Salisbury, MD-DE", 1),
    ("Springfield, IL", 1),
    ("Worcester, MA-CT", 1),
    ("York-Hanover, PA", 1),
)
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.78.2"
    " (KHTML, like Gecko) Version/7.0.6 Safari/537.78.2",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Windows NT 6.1; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2"
    " (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; WOW64; Trident/6.0)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2"
    " (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Windows NT 6.3; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_0) AppleWebKit/537.36"
    " (KHTML, like Gecko) Chrome/37.0.2062.94 Safari/537.36",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; WOW64; Trident/5.0)",
)

_SYLLABLES = (
    "ka", "lo", "mi", "ra", "ven", "tor", "sha", "del", "qui", "mar", "zen",
    "bel", "dor", "fi", "lu", "no", "sa", "tri", "vo", "xan", "yel", "bru",
    "cor", "dra", "el", "gan", "hol", "ish", "jun", "kel", "mo", "nir",
    "pa", "rin", "sol", "tam", "ul", "wex", "zor", "ba", "cy", "den",
)  # fmt: skip
_ADJECTIVES = (
    "Velvet", "Electric", "Silent", "Golden", "Broken", "Neon", "Crimson",
    "Hollow", "Wild", "Paper", "Midnight", "Northern", "Lucky", "Bitter",
    "Glass", "Lonely", "Young", "Static", "Burning", "Frozen",
)  # fmt: skip
_NOUNS = (
    "Harbors", "Wolves", "Echoes", "Rivers", "Pilots", "Ghosts", "Lanterns",
    "Satellites", "Kings", "Sparrows", "Machines", "Tides", "Strangers",
    "Horses", "Mirrors", "Saints", "Shadows", "Comets", "Birds", "Giants",
)  # fmt: skip
_WORDS = (
    "love", "night", "heart", "fire", "dream", "road", "rain", "light",
    "home", "summer", "blue", "gold", "river", "city", "time", "dance",
    "stars", "ocean", "forever", "tonight", "morning", "shadow", "wild",
    "run", "falling", "alone", "again", "sky", "storm", "bones", "sugar",
    "highway", "radio", "silver", "paradise", "echo", "winter", "crazy",
    "stay", "young", "lost", "breathe", "glow", "thunder", "velvet",
    "satellite", "honey", "midnight", "hollow", "over",
)  # fmt: skip
_SUFFIXES = (
    (" (Album Version)", 0.08),
    (" (Live)", 0.03),
    (" (Remix)", 0.02),
    (" [Explicit]", 0.015),
)
_ACCENTS = {"a": "å", "e": "é", "o": "ö", "u": "ü", "n": "ñ", "i": "í"}


class GenerateError(ValueError):
    """An argument to :func:`generate` is invalid or the output cannot be written."""


@dataclass(frozen=True)
class GenerateSummary:
    """What one :func:`generate` call wrote.

    Attributes
    ----------
    path
        The events file written (gzip if its name ends in ``.gz``); with
        several shards, a glob pattern that matches exactly the shard files
        (``sparkify run --input`` takes it as it is).
    ground_truth_path
        CSV with ``user_id, churn_propensity, will_churn, churned_at``.
    events
        Lines in the events files.
    users
        Distinct non-empty ``userId`` values in the events files.
    churners
        Users whose last event is ``Cancellation Confirmation``.
    seconds
        Wall time the call took.
    paths
        Every events file written, in shard order.
    bytes
        Size of the events before compression: the lines and the newlines
        between them.
    shards
        Number of events files.
    workers
        Processes that simulated users; 1 means all in the calling process.
    """

    path: Path
    ground_truth_path: Path
    events: int
    users: int
    churners: int
    seconds: float
    paths: tuple[Path, ...]
    bytes: int
    shards: int
    workers: int


def generate(
    out: str | Path,
    *,
    users: int | None = None,
    days: int = 60,
    start: date = date(2018, 10, 1),
    seed: int = 42,
    churn_rate: float = 0.22,
    overwrite: bool = False,
    size: str | int | None = None,
    shards: int = 1,
    workers: int | None = None,
) -> GenerateSummary:
    """Write a Sparkify-format event log and its hidden churn truth.

    Parameters
    ----------
    out
        Events file to write; a name ending in ``.gz`` is gzip-compressed
        (level 3, for speed). The ground truth goes next to it as
        ``<stem>.ground_truth.csv``. With several shards the shard number
        goes before the extension: ``dir/events.jsonl.gz`` gives
        ``dir/events-00000-of-00004.jsonl.gz`` and so on.
    users
        Distinct users in the log, including those who register in the
        window; 300 when neither ``users`` nor ``size`` is given.
    days
        Length of the window in days, starting at midnight UTC of ``start``.
    start
        First day of the window (a ``datetime`` is cut to its date).
    seed
        The same seed and arguments always give the same lines: the same
        bytes for the same ``shards``, the same lines in other files for
        another ``shards``, whatever ``workers`` is.
    churn_rate
        Expected share of users who cancel inside the window.
    overwrite
        Replace existing output files instead of refusing; shards of an
        earlier run under the same name are removed.
    size
        Target size of the events before compression, instead of ``users``:
        bytes as an int, or a string such as ``"500MB"``, ``"12GB"`` or
        ``"2GiB"`` (KB, MB, GB, TB are powers of 1000). The user count is
        chosen so that the estimate lands within 2% of the target, which
        the written size then matches within about 1%. Below a few MB one
        user is a large share of the log, so the size is only as close as
        whole users allow.
    shards
        Number of events files. Each shard holds a contiguous range of
        users (the guests who never register go with the last), in time
        order; ``sessionId`` is one counter across all shards.
    workers
        Processes that simulate users: the default is one per CPU, but at
        most one per 1,000 users, and no more than ``shards`` when
        ``shards`` > 1. With one file and several workers, this process
        merges their lines into the file.
    """
    began = time.perf_counter()
    first_day, target = _checked(
        users, days, start, seed, churn_rate, size, shards, workers
    )
    output = _output(out, shards, overwrite)
    window_start = int(
        datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp()
    )
    if target is not None:
        users = max(1, round(target / (_BYTES_PER_USER_DAY * days)))
    setup = _Setup(
        users=300 if users is None else users,
        seed=seed,
        churn_rate=churn_rate,
        window_start=window_start,
        window_end=window_start + days * _DAY,
    )
    processes = _process_count(workers, setup.users, shards)
    parts = shards if shards > 1 else processes
    log.info(
        "generating %s over %d days from %s (seed %d, churn_rate %.3f) to %s "
        "in %d shard(s) with %d process(es)",
        f"{setup.users} users" if target is None else f"about {target} bytes",
        days,
        first_day.isoformat(),
        seed,
        churn_rate,
        output.path,
        shards,
        processes,
    )

    with _InProcess() if processes == 1 else _Processes(processes) as pool:
        if target is not None:
            setup, planned = _sized(pool, setup, target, parts)
        elif parts > 1:
            planned = pool.plan(setup, _parts(setup.users, parts))
        else:
            # A single part numbers its sessions as they appear.
            planned = None
        session_ids = [None] if planned is None else _session_ids(planned)
        jobs = [
            _Job(
                part=part,
                session_ids=session_ids[part.index],
                path=output.paths[part.index] if shards > 1 or parts == 1 else None,
            )
            for part in _parts(setup.users, parts)
        ]
        if shards == 1 and parts > 1:
            written, size_written = pool.merge(setup, jobs, output.paths[0])
        else:
            written = pool.write(setup, jobs)
            size_written = sum(part.bytes for part in written)

    with _replaced(output.ground_truth) as handle:
        handle.write(_TRUTH_HEADER.encode())
        for part in written:
            handle.write(part.truth_rows.encode())
    for path in output.stale:
        path.unlink(missing_ok=True)

    summary = GenerateSummary(
        path=output.path,
        ground_truth_path=output.ground_truth,
        events=sum(part.events for part in written),
        users=sum(part.users for part in written),
        churners=sum(part.churners for part in written),
        seconds=time.perf_counter() - began,
        paths=output.paths,
        bytes=size_written,
        shards=shards,
        workers=processes,
    )
    log.info(
        "wrote %d events (%d bytes) for %d users (%d churners) to %s in %.1f s",
        summary.events,
        summary.bytes,
        summary.users,
        summary.churners,
        output.path,
        summary.seconds,
    )
    return summary


def _checked(
    users: int | None,
    days: int,
    start: date,
    seed: int,
    churn_rate: float,
    size: str | int | None,
    shards: int,
    workers: int | None,
) -> tuple[date, int | None]:
    """Validate the settings; return the first day and the size in bytes."""
    if users is not None and (
        isinstance(users, bool) or not isinstance(users, int) or users < 1
    ):
        raise GenerateError(f"users must be an integer >= 1, got {users!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise GenerateError(f"days must be an integer >= 1, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GenerateError(f"seed must be an integer, got {seed!r}")
    if (
        isinstance(churn_rate, bool)
        or not isinstance(churn_rate, int | float)
        or not 0.0 <= churn_rate <= 1.0
    ):
        raise GenerateError(
            f"churn_rate must be a number between 0 and 1, got {churn_rate!r}"
        )
    if not isinstance(start, date):
        raise GenerateError(f"start must be a datetime.date, got {start!r}")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise GenerateError(f"shards must be an integer >= 1, got {shards!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise GenerateError(
            f"workers must be an integer >= 1 or None (one per CPU), got {workers!r}"
        )
    if size is not None and users is not None:
        raise GenerateError(
            f"size={size!r} and users={users!r} were both given; pass one of them"
        )
    first_day = start.date() if isinstance(start, datetime) else start
    return first_day, None if size is None else _parse_size(size)


def _parse_size(size: str | int) -> int:
    """Bytes from ``12_000``, ``"500MB"``, ``"1.5GB"`` or ``"2GiB"``."""
    if isinstance(size, bool) or not isinstance(size, int | str):
        raise GenerateError(
            f"size must be bytes (an int) or a string such as '500MB', got {size!r}"
        )
    if isinstance(size, int):
        value = size
    else:
        match = _SIZE_PATTERN.fullmatch(size.strip())
        if match is None:
            raise GenerateError(
                f"size: cannot read {size!r}; give bytes or a number with KB, MB, "
                "GB or TB (or KiB, MiB, GiB, TiB), such as '500MB'"
            )
        number, unit = match.groups()
        value = int(float(number) * _SIZE_UNITS[(unit or "").lower()])
    if value < 1:
        raise GenerateError(f"size must be at least 1 byte, got {size!r}")
    return value


def _process_count(workers: int | None, users: int, shards: int) -> int:
    if workers is None:
        workers = min(os.cpu_count() or 1, max(1, users // _USERS_PER_PROCESS))
    return min(workers, shards) if shards > 1 else workers


@dataclass(frozen=True)
class _Output:
    """Where the events and the truth go, and what an earlier run left there."""

    path: Path
    paths: tuple[Path, ...]
    ground_truth: Path
    stale: tuple[Path, ...]


def _output(out: str | Path, shards: int, overwrite: bool) -> _Output:
    """The output files for ``out``, checked to be writable."""
    out_path = Path(out).expanduser()
    stem, suffix = _split_name(out_path.name)
    parent = out_path.parent
    if shards == 1:
        path, paths = out_path, (out_path,)
    else:
        path = parent / f"{stem}-*-of-{shards:05d}{suffix}"
        paths = tuple(
            parent / f"{stem}-{shard:05d}-of-{shards:05d}{suffix}"
            for shard in range(shards)
        )
    ground_truth = _ground_truth_path(out_path)

    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenerateError(
            f"out: cannot create directory {str(parent)!r} ({exc.strerror}); "
            "choose another path"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise GenerateError(
            f"out: directory {str(parent)!r} is not writable; choose another path"
        )
    if out_path.is_dir():
        raise GenerateError(
            f"out: {str(out_path)!r} is a directory; name a file such as "
            f"{str(out_path / 'events.jsonl.gz')!r} (shards go beside it)"
        )

    # The same name as one file or as shards of any count is the same output.
    shard_name = re.compile(rf"{re.escape(stem)}-\d{{5}}-of-\d{{5}}{re.escape(suffix)}")
    earlier = sorted(
        candidate
        for candidate in parent.iterdir()
        if candidate.name == out_path.name or shard_name.fullmatch(candidate.name)
    )
    if ground_truth.exists():
        earlier.append(ground_truth)
    for candidate in earlier:
        if candidate.is_dir():
            raise GenerateError(f"out: {str(candidate)!r} is a directory; name a file")
        if not overwrite:
            raise GenerateError(
                f"out: {str(candidate)!r} already exists; pass overwrite=True "
                "(--overwrite) to replace it or choose another path"
            )
    stale = tuple(sorted(set(earlier) - set(paths) - {ground_truth}))
    return _Output(path, paths, ground_truth, stale)


def _split_name(name: str) -> tuple[str, str]:
    """``("events", ".jsonl.gz")`` from ``"events.jsonl.gz"``."""
    stem = name.removesuffix(".gz")
    for suffix in (".jsonl", ".ndjson", ".json", ".log"):
        if stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
            break
    return stem, name[len(stem) :]


def _ground_truth_path(out: Path) -> Path:
    """``<stem>.ground_truth.csv`` beside ``out``, without .gz and .jsonl."""
    stem, _ = _split_name(out.name)
    return out.with_name(f"{stem or 'events'}.ground_truth.csv")


@dataclass
class _Plan:
    """One user's hidden traits, fixed before any event is simulated."""

    rng: random.Random
    registration: int
    registers_in_window: bool
    propensity: float
    churn_at: int | None
    fade_start: int | None
    fade_end: int | None
    fade_strength: float
    frustration: float
    sessions_per_day: float
    songs_per_session: float
    grumpiness: float
    level: str
    logged_in: bool
    gender: str
    first_name: str
    last_name: str
    location: str
    user_agent: str
    user_id: str = ""

    def progress(self, t: int) -> float:
        """How far into the fade the user is at ``t``: 0 (before) to 1 (end)."""
        if self.fade_start is None or self.fade_end is None or t <= self.fade_start:
            return 0.0
        if t >= self.fade_end:
            return 1.0
        return (t - self.fade_start) / (self.fade_end - self.fade_start)

    def fade(self, t: int) -> float:
        """How far the user has faded at ``t``: 0 (normal) to ``fade_strength``."""
        return self.fade_strength * self.progress(t)

    def profile(self) -> str:
        """The user fields of a line, from ``location`` to ``gender``."""
        dumps = _dumps
        return (
            f',"location":{dumps(self.location)}'
            f',"userAgent":{dumps(self.user_agent)}'
            f',"lastName":{dumps(self.last_name)}'
            f',"firstName":{dumps(self.first_name)}'
            f',"registration":{self.registration * 1000}'
            f',"gender":"{self.gender}"'
        )


def _dumps(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _mojibake(text: str) -> str:
    """UTF-8 bytes misread as Latin-1, the way eventsim's data has it."""
    return text.encode("utf-8").decode("latin-1")


def _propensity(rng: random.Random, churn_rate: float) -> float:
    if churn_rate <= 0.0:
        return 0.0
    if churn_rate >= 1.0:
        return 1.0
    concentration = 3.0
    return rng.betavariate(concentration * churn_rate, concentration * (1 - churn_rate))


@dataclass(frozen=True)
class _Setup:
    """What fixes the simulated users; workers get it with every request."""

    users: int
    seed: int
    churn_rate: float
    window_start: int
    window_end: int


def _new_users(setup: _Setup) -> int:
    """How many of the users register inside the window (the last indices)."""
    days = (setup.window_end - setup.window_start) // _DAY
    return min(setup.users // 2, round(setup.users * days * _NEW_USERS_PER_USER_DAY))


def _registration(rng: random.Random, registers: bool, setup: _Setup) -> int:
    """When a user registered: inside the window, or months before it."""
    window = setup.window_end - setup.window_start
    if registers:
        return setup.window_start + int(rng.uniform(0.02, 0.95) * window)
    tenure_days = min(900.0, max(1.0, rng.lognormvariate(math.log(90), 0.8)))
    return setup.window_start - int(tenure_days * _DAY)


@functools.lru_cache(maxsize=2)
def _user_order(setup: _Setup) -> tuple[int, ...]:
    """User indices in userId order: older accounts first, then those who
    register in the window."""
    first_new = setup.users - _new_users(setup)
    keys = []
    for index in range(setup.users):
        registers = index >= first_new
        rng = random.Random(f"{setup.seed}:user:{index}")
        keys.append((registers, _registration(rng, registers, setup), index))
    keys.sort()
    return tuple(index for _, _, index in keys)


def _plan_user(setup: _Setup, index: int, position: int) -> _Plan:
    """The traits of user ``index``, who is ``position``-th in userId order."""
    window_start, window_end = setup.window_start, setup.window_end
    window = window_end - window_start
    rng = random.Random(f"{setup.seed}:user:{index}")
    registers = index >= setup.users - _new_users(setup)
    registration = _registration(rng, registers, setup)

    propensity = _propensity(rng, setup.churn_rate)
    churn_at = fade_start = fade_end = None
    fade_strength = frustration = 0.0
    if rng.random() < propensity:
        earliest = registration + 7 * _DAY if registers else window_start
        earliest += min(2 * _DAY, window // 4)
        latest = window_end - max(3 * _HOUR, min(_DAY, window // 10))
        if earliest < latest:
            churn_at = rng.randrange(earliest, latest)
            fade_end = churn_at
            fade_start = churn_at - int(rng.uniform(21, 42) * _DAY)
            fade_strength = rng.uniform(0.35, 1.0)
            frustration = _CHURNER_FRUSTRATION
    if churn_at is None and rng.random() < _QUIET_SHARE:
        fade_end = rng.randrange(window_start, window_end)
        fade_start = fade_end - int(rng.uniform(7, 21) * _DAY)
        fade_strength = rng.uniform(0.4, 0.9)
        frustration = 0.6 if rng.random() < 0.3 else 0.0

    gender = "M" if rng.random() < 0.55 else "F"
    first_name = rng.choice(_FIRST_NAMES_M if gender == "M" else _FIRST_NAMES_F)
    last_name = rng.choice(_LAST_NAMES)
    if not first_name.isascii() and rng.random() < 0.35:
        first_name = _mojibake(first_name)
    if not last_name.isascii() and rng.random() < 0.35:
        last_name = _mojibake(last_name)
    user_agent = rng.choice(_USER_AGENTS)
    if "," in user_agent:
        user_agent = f'"{user_agent}"'
    locations, location_weights = zip(*_LOCATIONS, strict=True)

    return _Plan(
        rng=rng,
        registration=registration,
        registers_in_window=registers,
        propensity=propensity,
        churn_at=churn_at,
        fade_start=fade_start,
        fade_end=fade_end,
        fade_strength=fade_strength,
        frustration=frustration,
        sessions_per_day=rng.lognormvariate(math.log(0.28), 0.8)
        * (1 - 0.3 * propensity),
        songs_per_session=rng.lognormvariate(math.log(80), 0.6),
        grumpiness=rng.lognormvariate(0.0, 0.35) * (1 + propensity),
        level="free" if registers or rng.random() < 0.75 else "paid",
        logged_in=rng.random() < 0.85,
        gender=gender,
        first_name=first_name,
        last_name=last_name,
        location=rng.choices(locations, location_weights)[0],
        user_agent=user_agent,
        user_id=str(position + 1),
    )


@functools.lru_cache(maxsize=1)
def _catalogue(seed: int) -> _Catalogue:
    return _Catalogue(random.Random(f"{seed}:catalogue"))


class _Catalogue:
    """Synthetic songs: the JSON tail of a NextSong line, length and popularity."""

    def __init__(self, rng: random.Random, songs: int = 5000, artists: int = 3000):
        artist_names = [self._artist(rng) for _ in range(artists)]
        # A few names that carry the quirks of the real data: U+0085 from a
        # mangled "Å", and doubly mangled umlauts.
        artist_names[7] = _mojibake("Åsa " + _word_name(rng))
        artist_names[11] = _mojibake(_mojibake("Björk" + _word_name(rng).lower()))
        self.tails: list[str] = []
        self.seconds: list[int] = []
        for _ in range(songs):
            artist = artist_names[int(artists * rng.random() ** 1.7)]
            title = self._title(rng)
            draw = rng.random()
            if draw < 0.003:
                length = rng.uniform(15, 60)
            elif draw < 0.008:
                length = rng.uniform(600, 2600)
            else:
                length = min(1200.0, max(30.0, rng.lognormvariate(math.log(240), 0.29)))
            length = round(length, 5)
            self.tails.append(
                f',"artist":{_dumps(artist)},"song":{_dumps(title)},"length":{length!r}'
            )
            self.seconds.append(int(length))
        self.cumulative = list(
            itertools.accumulate(1.0 / (rank + 30) for rank in range(songs))
        )
        self.total = self.cumulative[-1]
        # A draw that rounds up to the total still lands on the last song.
        self.cumulative[-1] = math.inf

    def pick(self, rng: random.Random) -> tuple[str, int]:
        """A song by popularity: its line tail and its whole seconds."""
        index = bisect.bisect_right(self.cumulative, rng.random() * self.total)
        return self.tails[index], self.seconds[index]

    @staticmethod
    def _artist(rng: random.Random) -> str:
        style = rng.random()
        if style < 0.25:
            name = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        elif style < 0.55:
            name = _word_name(rng)
        elif style < 0.9:
            name = f"{_word_name(rng)} {_word_name(rng)}"
        else:
            name = f"{_word_name(rng)} & The {rng.choice(_NOUNS)}"
        if rng.random() < 0.04:
            name = "".join(
                _ACCENTS.get(char, char) if rng.random() < 0.3 else char
                for char in name
            )
            if rng.random() < 0.4:
                name = _mojibake(name)
        return name

    @staticmethod
    def _title(rng: random.Random) -> str:
        words = rng.choices(_WORDS, k=rng.choice((1, 2, 2, 3, 3, 4)))
        title = " ".join(word.capitalize() for word in words)
        draw = rng.random()
        if draw < 0.004:
            # eventsim writes some apostrophes as the control character U+0019.
            title = f"{words[0].capitalize()}\u0019s {title}"
        elif draw < 0.006:
            title = f'{title} "{rng.choice(_WORDS)}"'
        for suffix, share in _SUFFIXES:
            if rng.random() < share:
                title += suffix
                break
        return title


def _word_name(rng: random.Random) -> str:
    return "".join(rng.choices(_SYLLABLES, k=rng.choice((2, 2, 3)))).capitalize()


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    pages, weights = zip(*options, strict=True)
    return rng.choices(pages, weights)[0]


def _start_after(
    rng: random.Random,
    t: int,
    per_day: float,
    until: int,
    damping: Callable[[int], float] | None = None,
) -> int:
    """The next session start after ``t``, with the daily and weekly rhythm.

    Candidates arrive at the peak rate and are thinned by the hour and
    weekday weights (and by ``damping`` of a fading user). Returns a time at
    or after ``until`` when no session starts before it.
    """
    peak_rate = per_day / _MEAN_ACCEPT / _DAY
    while t < until:
        t += int(rng.expovariate(peak_rate)) + 1
        accept = _HOUR_WEIGHT[t // _HOUR % 24] * _WEEKDAY_WEIGHT[(t // _DAY + 3) % 7]
        if damping is not None:
            accept *= damping(t)
        if rng.random() < accept:
            return t
    return t


# One event on its way to the writer:
# (ts seconds, stream order, userId, session box, page fragment, level,
#  itemInSession, user fields, song fields). The session box is a one-item
# list the writer fills with the session id when the session's first event
# is written. The user and song fields are the line's JSON from location
# on, kept apart so that waiting events share the strings.
_Event = tuple[int, int, str, list[int | None], str, str, int, str, str]


class _UserSim:
    """Simulates one user's sessions in time order.

    Events are made as they are asked for, a few at a time, so a user who is
    waiting in the merge holds no more than part of a session.
    """

    def __init__(
        self,
        plan: _Plan,
        catalogue: _Catalogue,
        window_start: int,
        window_end: int,
        order: int,
    ):
        self.plan = plan
        self.rng = plan.rng
        self.catalogue = catalogue
        self.window_start = window_start
        self.window_end = window_end
        self.order = order
        self.level = plan.level
        self.logged_in = plan.logged_in
        self.profile = plan.profile()
        # An event with this userId fell inside the window.
        self.seen = False
        # An event fell at or after the window end: nothing more will show.
        self.past_end = False
        # When the last session ended.
        self.end = 0

    def events(self) -> Iterator[_Event]:
        """Every event of this user inside the window, in time order."""
        plan, rng = self.plan, self.rng
        window_start, window_end = self.window_start, self.window_end
        churn_at = plan.churn_at
        deadline = churn_at - 300 if churn_at is not None else window_end

        if plan.registers_in_window:
            yield from self._session(plan.registration, deadline, registering=True)
            self.seen = True
            if self.past_end:
                return
            cursor = self.end
        else:
            cursor = window_start - _DAY

        while True:
            start = _start_after(
                rng,
                cursor + 900,
                plan.sessions_per_day,
                window_end,
                lambda t: (1.0 - 0.7 * plan.fade(t)) * _LEVEL_ACTIVITY[self.level],
            )
            final = churn_at is not None and start >= churn_at
            forced = False
            if final:
                start = max(churn_at, cursor + 60)
            elif start >= window_end:
                # Every user shows up at least once: a user the rhythm left
                # out gets one session somewhere in the window.
                earliest = max(window_start, cursor + 900)
                if self.seen or earliest >= window_end - _HOUR:
                    return
                start = rng.randrange(earliest, window_end - _HOUR)
                forced = True

            yield from self._session(
                start,
                window_end - 900 if final else deadline,
                final=final,
                forced=forced,
            )
            if self.past_end or final or forced:
                return
            cursor = self.end

    def _table(self, frustration: float) -> tuple[list[float], list[str], float]:
        """Cumulative chances of the action pages for the current level."""
        cumulative: list[float] = []
        pages: list[str] = []
        total = 0.0
        free = self.level == "free"
        for page, free_chance, paid_chance, coefficient in _ACTIONS:
            chance = (free_chance if free else paid_chance) * max(
                0.0, 1.0 + coefficient * frustration
            )
            if page == "Thumbs Down":
                chance *= self.plan.grumpiness
            if chance > 0.0:
                total += chance
                cumulative.append(total)
                pages.append(page)
        return cumulative, pages, total

    def _session(
        self,
        start: int,
        deadline: int,
        *,
        registering: bool = False,
        final: bool = False,
        forced: bool = False,
    ) -> Iterator[_Event]:
        """One session from ``start``: its events inside the window.

        Sets ``end`` to the time the session ended, and ``past_end`` when an
        event fell at or after the end of the window.
        """
        rng, plan, catalogue = self.rng, self.plan, self.catalogue
        events: list[_Event] = []
        box: list[int | None] = [None]
        t = start
        item = 0
        profile = self.profile
        order = self.order
        user_id = plan.user_id
        window_start, window_end = self.window_start, self.window_end

        def add(page: str, auth: str, song: str = "") -> None:
            nonlocal item
            if window_start <= t < window_end:
                if auth == _LOGGED_IN or auth == _CANCELLED:
                    uid, user = user_id, profile
                    self.seen = True
                else:
                    uid = user = song = ""
                level = "free" if auth == _GUEST else self.level
                events.append(
                    (t, order, uid, box, _FRAG[page, auth], level, item, user, song)
                )
            elif t >= window_end:
                self.past_end = True
            item += 1

        def logged_out_pages() -> None:
            nonlocal t
            add("Home", _LOGGED_OUT)
            t += rng.randint(1, 90)
            while rng.random() < 0.3:
                add(_weighted(rng, _LOGGED_OUT_PAGES), _LOGGED_OUT)
                t += rng.randint(1, 90)

        def log_in() -> None:
            nonlocal t
            add("Login", _LOGGED_OUT)
            self.logged_in = True
            t += rng.randint(1, 90)
            add("Home", _LOGGED_IN)
            t += rng.randint(1, 60)

        if registering:
            # Guest pages, then Submit Registration exactly at registration.
            pages = [_weighted(rng, _GUEST_PAGES) for _ in range(rng.randint(0, 6))]
            if not pages or pages[-1] != "Register":
                pages.append("Register")
            pages.append("Submit Registration")
            gaps = [rng.randint(3, 90) for _ in pages]
            t = start - sum(gaps[:-1])
            for page, gap in zip(pages, gaps, strict=True):
                add(page, _GUEST)
                t += gap
            self.level = "free"
            self.logged_in = True
            add("Home", _LOGGED_IN)
            t += rng.randint(1, 60)
        elif not self.logged_in:
            if rng.random() < 0.65:
                logged_out_pages()
            if not (final or forced) and rng.random() < 0.15:
                self.end = t
                yield from events
                return
            log_in()
        elif rng.random() < 0.45:
            add("Home", _LOGGED_IN)
            t += rng.randint(1, 60)

        fade = plan.fade(start)
        frustration = plan.progress(start) * plan.frustration
        if final:
            songs = rng.randint(1, 8)
        else:
            songs = plan.songs_per_session * (1 - 0.5 * fade)
            if self.level == "free":
                songs *= 0.7
            songs = max(1, min(900, round(songs * rng.lognormvariate(-0.46, 1.18))))
        cumulative, pages, total = self._table(frustration)
        played = 0
        while played < songs and t < deadline:
            tail, seconds = catalogue.pick(rng)
            if final and t + seconds >= deadline:
                break
            add("NextSong", _LOGGED_IN, tail)
            # Clicks (thumbs, playlist, friends, ...) come seconds after the
            # song starts, while it plays, as in eventsim; the next song
            # starts when this one ends.
            song_end = t + seconds
            t += _click_gap(rng)
            played += 1
            while True:
                draw = rng.random()
                if draw >= total:
                    break
                page = pages[bisect.bisect_right(cumulative, draw)]
                add(page, _LOGGED_IN)
                t += _click_gap(rng)
                if page == "Logout":
                    self.logged_in = False
                    logged_out_pages()
                    if not final and rng.random() < 0.15:
                        self.end = t
                        yield from events
                        return
                    log_in()
                elif page == "Upgrade" and rng.random() < _SUBMIT_UPGRADE:
                    add("Submit Upgrade", _LOGGED_IN)
                    self.level = "paid"
                    t += rng.randint(5, 90)
                    add("Home", _LOGGED_IN)
                    t += rng.randint(1, 30)
                    cumulative, pages, total = self._table(frustration)
                elif page == "Downgrade" and rng.random() < _SUBMIT_DOWNGRADE * (
                    1 + 2 * frustration
                ):
                    add("Submit Downgrade", _LOGGED_IN)
                    self.level = "free"
                    t += rng.randint(5, 90)
                    add("Home", _LOGGED_IN)
                    t += rng.randint(1, 30)
                    cumulative, pages, total = self._table(frustration)
                elif page == "Settings" and rng.random() < _SAVE_SETTINGS:
                    add("Save Settings", _LOGGED_IN)
                    t += rng.randint(1, 30)
            t = max(t, song_end)
            if len(events) >= 32:
                yield from events
                events.clear()

        if final:
            add(_weighted(rng, _BEFORE_CANCEL[self.level]), _LOGGED_IN)
            t += rng.randint(2, 90)
            add("Cancel", _LOGGED_IN)
            t += rng.randint(0, 120)
            add("Cancellation Confirmation", _CANCELLED)
        self.end = t
        yield from events


def _click_gap(rng: random.Random) -> int:
    """Seconds before a click while a song plays: mostly 0 to 5, never over 10."""
    return min(10, int(rng.expovariate(1 / 3.5)))


def _guest_events(
    rng: random.Random, users: int, window_start: int, window_end: int, order: int
) -> Iterator[_Event]:
    """Visitors who browse as guests and do not register."""
    per_day = users * _GUEST_VISITS_PER_USER_DAY
    t = window_start
    while True:
        t = _start_after(rng, t, per_day, window_end)
        if t >= window_end:
            return
        box: list[int | None] = [None]
        for item in range(rng.randint(2, 10)):
            if t >= window_end:
                return
            page = _weighted(rng, _GUEST_PAGES)
            yield (t, order, "", box, _FRAG[page, _GUEST], "free", item, "", "")
            t += rng.randint(3, 120)


@dataclass(frozen=True)
class _Part:
    """A contiguous range of users in userId order, written as one run."""

    index: int
    first: int
    stop: int
    guests: bool


@dataclass(frozen=True)
class _Planned:
    """The first pass over a part: where its sessions start and its size."""

    part: int
    # ts * (users + 1) + position of the user (users for guests), sorted:
    # the order in which the sessions first appear in the log.
    session_keys: array
    events: int
    # Characters of the values that vary from line to line (userId, page
    # fragment, level, itemInSession and the user and song fields).
    chars: int


@dataclass(frozen=True)
class _Job:
    """The second pass over a part: its session ids and where lines go."""

    part: _Part
    # The ids of the part's sessions in order of appearance; None numbers
    # them 1, 2, ... (for a log written as one part).
    session_ids: array | None
    # The file to write, or None to stream the lines back to the parent.
    path: Path | None


@dataclass(frozen=True)
class _Written:
    """What a part wrote, and its users' rows of the ground truth."""

    part: int
    events: int
    bytes: int
    users: int
    churners: int
    truth_rows: str


@dataclass
class _Tally:
    events: int = 0
    seen: set[str] = field(default_factory=set)
    churned: dict[str, int] = field(default_factory=dict)


_TRUTH_HEADER = "user_id,churn_propensity,will_churn,churned_at\n"


def _parts(users: int, count: int) -> list[_Part]:
    """``count`` ranges of nearly equal numbers of users; guests go last."""
    bounds = [users * index // count for index in range(count + 1)]
    return [
        _Part(index, bounds[index], bounds[index + 1], index == count - 1)
        for index in range(count)
    ]


def _streams(
    setup: _Setup, part: _Part
) -> Iterator[tuple[int, _Plan | None, Iterator[_Event]]]:
    """Each user's position, plan and events in the part, then the guests'."""
    catalogue = _catalogue(setup.seed)
    order = _user_order(setup)
    window_start, window_end = setup.window_start, setup.window_end
    for position in range(part.first, part.stop):
        plan = _plan_user(setup, order[position], position)
        sim = _UserSim(plan, catalogue, window_start, window_end, position)
        yield position, plan, sim.events()
    if part.guests:
        rng = random.Random(f"{setup.seed}:guests")
        yield (
            setup.users,
            None,
            _guest_events(rng, setup.users, window_start, window_end, setup.users),
        )


def _plan_part(setup: _Setup, part: _Part) -> _Planned:
    """First pass: simulate each user of the part alone, keeping only where
    sessions start and how long the lines are."""
    keys: list[int] = []
    events = chars = 0
    scale = setup.users + 1
    for position, _, stream in _streams(setup, part):
        for ts, _, uid, box, frag, level, item, user, song in stream:
            if box[0] is None:
                box[0] = 0
                keys.append(ts * scale + position)
            chars += len(uid) + len(frag) + len(level) + len(str(item))
            chars += len(user) + len(song)
            events += 1
    keys.sort()
    return _Planned(part.index, array("q", keys), events, chars)


def _write_part(
    setup: _Setup, job: _Job, connection: Connection | None = None
) -> _Written:
    """Second pass: merge the part's users in time order and write the lines
    to ``job.path``, or send them over ``connection``."""
    users = list(_streams(setup, job.part))
    session_ids = (
        itertools.count(1) if job.session_ids is None else iter(job.session_ids)
    )
    tally = _Tally()
    blocks = _blocks(
        heapq.merge(*(stream for _, _, stream in users)), session_ids, tally
    )
    if job.path is None:
        assert connection is not None
        size = 0
        for block in blocks:
            connection.send_bytes(block)
            size += len(block)
        connection.send_bytes(b"")
    else:
        size = _write_file(job.path, blocks)

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for _, plan, _ in users:
        if plan is None:
            continue
        churned_at = tally.churned.get(plan.user_id)
        writer.writerow(
            [
                plan.user_id,
                f"{plan.propensity:.4f}",
                "false" if churned_at is None else "true",
                ""
                if churned_at is None
                else datetime.fromtimestamp(churned_at, UTC).isoformat(),
            ]
        )
    return _Written(
        part=job.part.index,
        events=tally.events,
        bytes=size,
        users=len(tally.seen),
        churners=len(tally.churned),
        truth_rows=text.getvalue(),
    )


def _blocks(
    events: Iterator[_Event], session_ids: Iterator[int], tally: _Tally
) -> Iterator[bytes]:
    """The lines of ``events`` in UTF-8, many lines to a block, with no
    newline at either end of a block."""
    seen, churned = tally.seen, tally.churned
    buffer: list[str] = []
    for ts, _, uid, box, frag, level, item, user, song in events:
        session_id = box[0]
        if session_id is None:
            session_id = box[0] = next(session_ids)
        buffer.append(
            f'{{"ts":{ts}000,"userId":"{uid}","sessionId":{session_id}'
            f'{frag}{level}","itemInSession":{item}{user}{song}}}'
        )
        if uid:
            seen.add(uid)
            if frag is _CONFIRMATION_FRAG:
                churned[uid] = ts
        if len(buffer) >= _LINES_PER_BLOCK:
            tally.events += len(buffer)
            yield "\n".join(buffer).encode()
            buffer.clear()
    if buffer:
        tally.events += len(buffer)
        yield "\n".join(buffer).encode()


def _write_file(path: Path, blocks: Iterable[bytes]) -> int:
    """Write the blocks with a newline between them; return the bytes before
    compression. A name ending in .gz is compressed."""
    size = 0
    with _replaced(path) as handle, ExitStack() as stack:
        sink: IO[bytes] = handle
        if path.name.endswith(".gz"):
            # No file name or time in the header, so equal input gives equal bytes.
            sink = stack.enter_context(
                gzip.GzipFile(
                    filename="",
                    mode="wb",
                    fileobj=handle,
                    compresslevel=_GZIP_LEVEL,
                    mtime=0,
                )
            )
        separator = b""
        for block in blocks:
            sink.write(separator)
            sink.write(block)
            size += len(separator) + len(block)
            separator = b"\n"
    return size


def _sized(
    pool: _InProcess | _Processes, setup: _Setup, target: int, parts: int
) -> tuple[_Setup, list[_Planned]]:
    """The user count whose estimated size is nearest ``target``, and its
    first pass.

    Starts from the measured bytes per user and day, then corrects from
    each first pass: by the ratio to the target until the target is
    bracketed, then by interpolating between the nearest counts on either
    side. One user's share of a small log is large, so small targets take a
    few passes; large ones are usually right at the first.
    """
    tried: dict[int, int] = {}
    best: tuple[int, _Setup, list[_Planned]] | None = None
    for _ in range(_SIZE_ATTEMPTS):
        planned = pool.plan(setup, _parts(setup.users, parts))
        estimate = _estimated_bytes(setup, planned)
        tried[setup.users] = estimate
        if best is None or abs(estimate - target) < abs(best[0] - target):
            best = (estimate, setup, planned)
        if abs(estimate - target) <= _SIZE_TOLERANCE * target:
            break
        below = [(n, size) for n, size in tried.items() if size < target]
        above = [(n, size) for n, size in tried.items() if size > target]
        if below and above:
            low, low_size = max(below)
            high, high_size = min(above)
            users = low + round(
                (high - low) * (target - low_size) / (high_size - low_size)
            )
            users = min(max(users, low + 1), high - 1) if high - low > 1 else low
        else:
            users = max(1, round(setup.users * target / max(estimate, 1)))
        if users in tried:
            break
        setup = replace(setup, users=users)
    assert best is not None
    estimate, setup, planned = best
    log.info(
        "sized %d bytes as %d users (estimated %d bytes, %d pass(es))",
        target,
        setup.users,
        estimate,
        len(tried),
    )
    return setup, planned


def _estimated_bytes(setup: _Setup, planned: list[_Planned]) -> int:
    """The size the lines will have, from a first pass.

    Exact but for the sessionId digits (taken as the average over the ids)
    and letters outside ASCII (counted as one byte, a few in a thousand).
    """
    events = sum(part.events for part in planned)
    if not events:
        return 0
    sessions = sum(len(part.session_keys) for part in planned)
    id_digits = sum(
        digits * (min(sessions, 10**digits - 1) - 10 ** (digits - 1) + 1)
        for digits in range(1, len(str(sessions)) + 1)
    )
    ts_digits = len(str(setup.window_start)) + 3
    return (
        sum(part.chars for part in planned)
        + events * (_LINE_OVERHEAD + ts_digits)
        + round(events * id_digits / sessions)
        - 1
    )


def _session_ids(planned: list[_Planned]) -> list[array]:
    """Each part's session ids, numbered by first appearance in the whole log."""
    ids = [array("q") for _ in planned]
    merged = heapq.merge(
        *(
            zip(part.session_keys, itertools.repeat(index))
            for index, part in enumerate(planned)
        )
    )
    for number, (_, index) in enumerate(merged, start=1):
        ids[index].append(number)
    return ids


class _InProcess:
    """Runs the passes in this process, one part after another."""

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def plan(self, setup: _Setup, parts: list[_Part]) -> list[_Planned]:
        return [_plan_part(setup, part) for part in parts]

    def write(self, setup: _Setup, jobs: list[_Job]) -> list[_Written]:
        return [_write_part(setup, job) for job in jobs]


class _Processes:
    """Worker processes that run the passes for the parts they are sent.

    Each worker serves requests over its own pipe (see :func:`_serve`);
    parts are dealt out in turn. The workers are started with ``spawn``,
    which is safe in a process that runs threads, so a script that calls
    :func:`generate` with several workers needs the usual
    ``if __name__ == "__main__":`` guard.
    """

    def __init__(self, count: int):
        context = multiprocessing.get_context("spawn")
        self.connections: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        for number in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(theirs,),
                name=f"sparkify-generate-{number}",
                daemon=True,
            )
            process.start()
            theirs.close()
            self.connections.append(ours)
            self.processes.append(process)

    def __enter__(self) -> _Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for connection, process in zip(self.connections, self.processes, strict=True):
            try:
                if kind is None:
                    connection.send(("stop",))
                else:
                    process.terminate()
            except OSError:
                process.terminate()
        for connection, process in zip(self.connections, self.processes, strict=True):
            process.join()
            connection.close()

    def plan(self, setup: _Setup, parts: list[_Part]) -> list[_Planned]:
        return self._run("plan", setup, parts)

    def write(self, setup: _Setup, jobs: list[_Job]) -> list[_Written]:
        return self._run("write", setup, jobs)

    def merge(
        self, setup: _Setup, jobs: list[_Job], path: Path
    ) -> tuple[list[_Written], int]:
        """Have each worker stream one part here, and merge the parts in time
        order into ``path``; return what each wrote and the bytes in ``path``."""
        connections = self.connections[: len(jobs)]
        for connection, job in zip(connections, jobs, strict=True):
            connection.send(("write", setup, [job]))
        # Equal times keep the parts' order, which is the order of the users
        # in them, as a merge in one process would.
        stop = threading.Event()
        merged = heapq.merge(
            *(_received_lines(connection, stop) for connection in connections),
            key=_ts_key(setup),
        )
        batches = iter(lambda: list(itertools.islice(merged, _LINES_PER_BLOCK)), [])
        try:
            size = _write_file(path, (b"\n".join(batch) for batch in batches))
        finally:
            stop.set()
        written = [self._reply(connection)[0] for connection in connections]
        return written, size

    def _run(self, command: str, setup: _Setup, items: list) -> list:
        count = len(self.connections)
        shares = [items[number::count] for number in range(count)]
        for connection, share in zip(self.connections, shares, strict=True):
            if share:
                connection.send((command, setup, share))
        results = []
        for connection, share in zip(self.connections, shares, strict=True):
            if share:
                results.extend(self._reply(connection))
        return sorted(results, key=operator.attrgetter("part"))

    @staticmethod
    def _reply(connection: Connection) -> list:
        try:
            status, value = connection.recv()
        except EOFError:
            raise RuntimeError(
                "a generator worker process ended unexpectedly"
            ) from None
        if status == "error":
            raise value
        return value


def _serve(connection: Connection) -> None:
    """A worker's loop: run each request and send back its results.

    Requests are ``("plan", setup, parts)``, ``("write", setup, jobs)`` and
    ``("stop",)``. Results go back as ``("ok", results)``, a failure as
    ``("error", exception)``. A job with no path streams its lines first,
    as blocks that start with ``{``, then an empty block.
    """
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request[0] == "stop":
            return
        command, setup, items = request
        try:
            if command == "plan":
                results = [_plan_part(setup, part) for part in items]
            else:
                results = [_write_part(setup, job, connection) for job in items]
        except Exception as exc:  # the parent raises it
            connection.send(("error", exc))
        else:
            connection.send(("ok", results))


def _received_lines(connection: Connection, stop: threading.Event) -> Iterator[bytes]:
    """The lines a worker streams, up to its empty block.

    A thread reads ahead a few blocks, so the worker keeps simulating while
    this process is busy with the other workers' lines.
    """
    blocks: queue.Queue[bytes | BaseException] = queue.Queue(_BLOCKS_AHEAD)

    def receive() -> None:
        while not stop.is_set():
            try:
                block: bytes | BaseException = connection.recv_bytes()
            except (EOFError, OSError):
                block = RuntimeError("a generator worker process ended unexpectedly")
            if block and not isinstance(block, BaseException) and block[:1] != b"{":
                # The worker failed and sent its error instead.
                block = pickle.loads(block)[1]
            while not stop.is_set():
                try:
                    blocks.put(block, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if not block or isinstance(block, BaseException):
                return

    threading.Thread(target=receive, daemon=True).start()
    while block := blocks.get():
        if isinstance(block, BaseException):
            raise block
        yield from block.split(b"\n")


def _ts_key(setup: _Setup) -> Callable[[bytes], object]:
    """The sort key of a line: its ts, read from the line's start."""
    digits = len(str(setup.window_start)) + 3
    if setup.window_start >= 0 and len(str(setup.window_end - 1)) + 3 == digits:
        # Every ts has as many digits, so the bytes sort as the numbers do.
        return operator.itemgetter(slice(6, 6 + digits))
    return lambda line: int(line[6 : line.index(b",", 6)])


@contextmanager
def _replaced(path: Path) -> Iterator[IO[bytes]]:
    """A new file beside ``path`` that replaces it only once fully written."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
