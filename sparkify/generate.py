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
"""

from __future__ import annotations

import bisect
import csv
import gzip
import heapq
import io
import itertools
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

__all__ = ["GenerateError", "GenerateSummary", "generate"]

log = logging.getLogger(__name__)

_HOUR = 3_600
_DAY = 86_400

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
        The events file written (gzip if its name ends in ``.gz``).
    ground_truth_path
        CSV with ``user_id, churn_propensity, will_churn, churned_at``.
    events
        Lines in the events file.
    users
        Distinct non-empty ``userId`` values in the events file.
    churners
        Users whose last event is ``Cancellation Confirmation``.
    seconds
        Wall time the call took.
    """

    path: Path
    ground_truth_path: Path
    events: int
    users: int
    churners: int
    seconds: float


def generate(
    out: str | Path,
    *,
    users: int = 300,
    days: int = 60,
    start: date = date(2018, 10, 1),
    seed: int = 42,
    churn_rate: float = 0.22,
    overwrite: bool = False,
) -> GenerateSummary:
    """Write a Sparkify-format event log and its hidden churn truth.

    Parameters
    ----------
    out
        Events file to write; a name ending in ``.gz`` is gzip-compressed.
        The ground truth goes next to it as ``<stem>.ground_truth.csv``.
    users
        Distinct users in the log, including those who register in the window.
    days
        Length of the window in days, starting at midnight UTC of ``start``.
    start
        First day of the window (a ``datetime`` is cut to its date).
    seed
        The same seed and arguments always give byte-identical files.
    churn_rate
        Expected share of users who cancel inside the window.
    overwrite
        Replace existing output files instead of refusing.
    """
    began = time.perf_counter()
    out_path, truth_path, first_day = _checked(
        out, users, days, start, seed, churn_rate, overwrite
    )
    log.info(
        "generating %d users over %d days from %s (seed %d, churn_rate %.3f) to %s",
        users,
        days,
        first_day.isoformat(),
        seed,
        churn_rate,
        out_path,
    )

    window_start = int(
        datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp()
    )
    window_end = window_start + days * _DAY
    catalogue = _Catalogue(random.Random(f"{seed}:catalogue"))
    plans = _plan_users(users, seed, churn_rate, window_start, window_end)

    streams: list[Iterator[_Event]] = [
        _UserSim(plan, catalogue, window_start, window_end, order).events()
        for order, plan in enumerate(plans)
    ]
    streams.append(
        _guest_events(
            random.Random(f"{seed}:guests"),
            users,
            window_start,
            window_end,
            len(plans),
        )
    )
    gzipped = out_path.name.endswith(".gz")
    with _replaced(out_path) as handle:
        events, seen, churned = _write_events(handle, streams, gzipped)
    with _replaced(truth_path) as handle:
        _write_ground_truth(handle, plans, churned)

    summary = GenerateSummary(
        path=out_path,
        ground_truth_path=truth_path,
        events=events,
        users=len(seen),
        churners=len(churned),
        seconds=time.perf_counter() - began,
    )
    log.info(
        "wrote %d events for %d users (%d churners) to %s in %.1f s",
        summary.events,
        summary.users,
        summary.churners,
        out_path,
        summary.seconds,
    )
    return summary


def _checked(
    out: str | Path,
    users: int,
    days: int,
    start: date,
    seed: int,
    churn_rate: float,
    overwrite: bool,
) -> tuple[Path, Path, date]:
    """Validate the arguments; return the two output paths and the first day."""
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
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
    first_day = start.date() if isinstance(start, datetime) else start

    out_path = Path(out).expanduser()
    truth_path = _ground_truth_path(out_path)
    parent = out_path.parent
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
    for path in (out_path, truth_path):
        if path.is_dir():
            raise GenerateError(f"out: {str(path)!r} is a directory; name a file")
        if path.exists() and not overwrite:
            raise GenerateError(
                f"out: {str(path)!r} already exists; pass overwrite=True "
                "(--overwrite) to replace it or choose another path"
            )
    return out_path, truth_path, first_day


def _ground_truth_path(out: Path) -> Path:
    """``<stem>.ground_truth.csv`` beside ``out``, without .gz and .jsonl."""
    name = out.name.removesuffix(".gz")
    for suffix in (".jsonl", ".ndjson", ".json", ".log"):
        if name.endswith(suffix):
            name = name.removesuffix(suffix)
            break
    return out.with_name(f"{name or 'events'}.ground_truth.csv")


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


def _plan_users(
    users: int, seed: int, churn_rate: float, window_start: int, window_end: int
) -> list[_Plan]:
    """Every user's traits, in userId order (existing users first)."""
    window = window_end - window_start
    days = window // _DAY
    new_users = min(users // 2, round(users * days * _NEW_USERS_PER_USER_DAY))
    locations, location_weights = zip(*_LOCATIONS, strict=True)
    plans = []
    for index in range(users):
        rng = random.Random(f"{seed}:user:{index}")
        registers = index >= users - new_users
        if registers:
            registration = window_start + int(rng.uniform(0.02, 0.95) * window)
        else:
            tenure_days = min(900.0, max(1.0, rng.lognormvariate(math.log(90), 0.8)))
            registration = window_start - int(tenure_days * _DAY)

        propensity = _propensity(rng, churn_rate)
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

        plans.append(
            _Plan(
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
            )
        )

    # Older accounts get lower ids, and registrations in the window follow.
    plans.sort(key=lambda plan: (plan.registers_in_window, plan.registration))
    for number, plan in enumerate(plans, start=1):
        plan.user_id = str(number)
    return plans


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
#  itemInSession, tail). The session box is a one-item list the writer fills
# with the next session id when the session's first event is written.
_Event = tuple[int, int, str, list[int | None], str, str, int, str]


class _UserSim:
    """Simulates one user's sessions in time order."""

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

    def events(self) -> Iterator[_Event]:
        """Every event of this user inside the window, in time order."""
        plan, rng = self.plan, self.rng
        window_start, window_end = self.window_start, self.window_end
        churn_at = plan.churn_at
        deadline = churn_at - 300 if churn_at is not None else window_end
        seen = False

        if plan.registers_in_window:
            session, cursor = self._session(
                plan.registration, deadline, registering=True
            )
            seen = True
            yield from (
                event for event in session if window_start <= event[0] < window_end
            )
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
                if seen or earliest >= window_end - _HOUR:
                    return
                start = rng.randrange(earliest, window_end - _HOUR)
                forced = True

            session, cursor = self._session(
                start,
                window_end - 900 if final else deadline,
                final=final,
                forced=forced,
            )
            if session and window_start <= session[0][0] and cursor < window_end:
                seen = seen or any(event[2] for event in session)
                yield from session
            else:
                for event in session:
                    if event[0] >= window_end:
                        return
                    if event[0] >= window_start:
                        seen = seen or bool(event[2])
                        yield event
            if final or forced:
                return

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
    ) -> tuple[list[_Event], int]:
        """One session from ``start``; returns its events and its end time."""
        rng, plan, catalogue = self.rng, self.plan, self.catalogue
        events: list[_Event] = []
        box: list[int | None] = [None]
        t = start
        item = 0
        profile = self.profile
        order = self.order
        user_id = plan.user_id

        def add(page: str, auth: str, tail: str | None = None) -> None:
            nonlocal item
            if auth == _LOGGED_IN or auth == _CANCELLED:
                uid, tail = user_id, profile if tail is None else profile + tail
            else:
                uid, tail = "", ""
            level = "free" if auth == _GUEST else self.level
            events.append((t, order, uid, box, _FRAG[page, auth], level, item, tail))
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
                return events, t
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
            songs = max(1, min(900, round(songs * rng.lognormvariate(-0.8, 1.25))))
        cumulative, pages, total = self._table(frustration)
        played = 0
        while played < songs and t < deadline:
            tail, seconds = catalogue.pick(rng)
            if final and t + seconds >= deadline:
                break
            add("NextSong", _LOGGED_IN, tail)
            t += seconds
            played += 1
            while True:
                draw = rng.random()
                if draw >= total:
                    break
                page = pages[bisect.bisect_right(cumulative, draw)]
                add(page, _LOGGED_IN)
                t += rng.randint(1, 30)
                if page == "Logout":
                    self.logged_in = False
                    logged_out_pages()
                    if not final and rng.random() < 0.15:
                        return events, t
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

        if final:
            add(_weighted(rng, _BEFORE_CANCEL[self.level]), _LOGGED_IN)
            t += rng.randint(2, 90)
            add("Cancel", _LOGGED_IN)
            t += rng.randint(0, 120)
            add("Cancellation Confirmation", _CANCELLED)
        return events, t


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
            yield (t, order, "", box, _FRAG[page, _GUEST], "free", item, "")
            t += rng.randint(3, 120)


def _write_events(
    handle: IO[bytes], streams: Iterable[Iterator[_Event]], gzipped: bool
) -> tuple[int, set[str], dict[str, int]]:
    """Merge the streams into ``handle``; return lines, user ids and churn times."""
    seen: set[str] = set()
    churned: dict[str, int] = {}
    events = 0
    next_session = 1
    with ExitStack() as stack:
        raw: IO[bytes] = handle
        if gzipped:
            # No file name or time in the header, so equal input gives equal bytes.
            raw = stack.enter_context(
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=handle, compresslevel=6, mtime=0
                )
            )
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        buffer: list[str] = []
        separator = ""
        for ts, _, uid, box, frag, level, item, tail in heapq.merge(*streams):
            session_id = box[0]
            if session_id is None:
                session_id = box[0] = next_session
                next_session += 1
            buffer.append(
                f'{{"ts":{ts}000,"userId":"{uid}","sessionId":{session_id}'
                f'{frag}{level}","itemInSession":{item}{tail}}}'
            )
            if uid:
                seen.add(uid)
                if frag is _CONFIRMATION_FRAG:
                    churned[uid] = ts
            if len(buffer) >= 8192:
                text.write(separator + "\n".join(buffer))
                events += len(buffer)
                buffer.clear()
                separator = "\n"
        if buffer:
            text.write(separator + "\n".join(buffer))
            events += len(buffer)
        text.flush()
        text.detach()
    return events, seen, churned


def _write_ground_truth(
    handle: IO[bytes], plans: list[_Plan], churned: dict[str, int]
) -> None:
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["user_id", "churn_propensity", "will_churn", "churned_at"])
    for plan in plans:
        churned_at = churned.get(plan.user_id)
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
    text.flush()
    text.detach()


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
