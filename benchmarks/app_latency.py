"""How fast the agents' app answers over HTTP, with many customers and agents.

Builds a serving database of ``--customers`` synthetic customers (1,000,000
by default, seed 42) with ``sparkify.serving.publish``, so its tables and
indexes are the app's own, into a scratch directory (or uses ``--db``). It
then starts the app the way a user does, ``sparkify serve --db ... --port
...`` in a process of its own, and after a warm-up drives it for
``--seconds`` with ``--concurrency`` simulated agents. Each agent asks one
question through Gradio's queued HTTP API (``POST /gradio_api/call/ask``,
then the server-sent events of ``GET /gradio_api/call/ask/<event_id>``),
waits for the reply and asks the next. A latency runs from the POST to the
``complete`` event; a reply that is an error event, a timeout or not the
answer asked for (the card of another customer, say) is a failure and is
left out of the percentiles.

The questions follow ``--mix``: bare customer IDs (``id``), "customer <id>
is asking about ads" (``ads``) and unknown IDs (``unknown``) by default;
``id`` and ``ads`` together are the customer answer the latency target is
about (p95 under 150 ms with 20 agents). ``name`` (a customer's first and
last name), ``top_risk`` ("top 10 at-risk paid customers in <ST>") and
``rate_by_level`` ("churn rate by level") get figures of their own. Prints the
building time and size of the database, the load average before and after,
the figures per kind, the handler's own times from the server's log, the
server's CPU and resident memory, and the verdict. Record figures in
BENCHMARKS.md with the command that made them.

    .venv/bin/python benchmarks/app_latency.py
    .venv/bin/python benchmarks/app_latency.py --customers 1000000 \\
        --concurrency 20 --seconds 60 --db /tmp/serving-1m.db

At 1,000,000 customers (800,000 scores, 7.5 million daily rows, 1.1 GB)
building takes about 4.5 minutes, nearly all of it in ``publish()``, which
turns every row into a dict first: the process peaks near 10 GiB resident.
Build once with ``--db PATH`` and later runs reuse the file.

``sparkify serve`` configures no logging, so the server is started with a
``sitecustomize`` module on its ``PYTHONPATH`` that sends the ``chat_ui``
INFO lines ("answered kind=card in 4 ms") to its log; ``--no-handler-log``
starts it without. ``--app-path DIR`` puts DIR first on the server's
``PYTHONPATH``: a changed copy of ``chat_ui/`` there is served instead of the
repository's, to measure a change before making it; ``--api run`` then
asks ``/gradio_api/run/ask`` in one POST, which Gradio serves only for an
endpoint declared with ``queue=False``. The load generator runs on the same
machine as the app and its CPU seconds are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import yaml

from sparkify.serving import ACTIVITY_DAYS, publish, risk_band

REPO = Path(__file__).resolve().parents[1]
RULES_FILE = REPO / "ml" / "retention_rules.yml"
TARGET_P95_MS = 150.0
TARGET_CONCURRENCY = 20
AS_OF = dt.date(2018, 12, 1)
MODEL_VERSION = "v3"

# Names repeat in real logs: a few hundred of each, drawn with skewed weights.
_FIRST_NAMES_F = (
    "Abigail", "Addison", "Adriana", "Aaliyah", "Alexa", "Alexis", "Alice",
    "Allison", "Alyssa", "Amanda", "Amelia", "Andrea", "Angela", "Anna",
    "Ariana", "Ashley", "Aubrey", "Audrey", "Autumn", "Ava", "Bailey",
    "Brianna", "Brooke", "Brooklyn", "Caroline", "Catherine", "Charlotte",
    "Chloe", "Claire", "Danielle", "Delilah", "Destiny", "Diana", "Elena",
    "Elizabeth", "Ella", "Emily", "Emma", "Erin", "Eva", "Evelyn", "Faith",
    "Fatima", "Gabriella", "Gianna", "Grace", "Hailey", "Hannah", "Harper",
    "Isabella", "Jacqueline", "Jasmine", "Jennifer", "Jessica", "Jordan",
    "Julia", "Kaitlyn", "Katherine", "Kayla", "Kennedy", "Kimberly", "Kylie",
    "Laura", "Lauren", "Layla", "Leah", "Lillian", "Lily", "Lucy", "Mackenzie",
    "Madeline", "Madison", "Makayla", "Maria", "Mariah", "Maya", "Megan",
    "Melanie", "Mia", "Michelle", "Molly", "Morgan", "Naomi", "Natalie",
    "Nevaeh", "Nicole", "Olivia", "Paige", "Peyton", "Quinn", "Rachel",
    "Rebecca", "Riley", "Rylee", "Sadie", "Samantha", "Sara", "Sarah",
    "Savannah", "Scarlett", "Sierra", "Sofia", "Sophia", "Stella", "Stephanie",
    "Sydney", "Taylor", "Trinity", "Valeria", "Vanessa", "Victoria", "Violet",
    "Ximena", "Zoe", "Zoë", "Renée", "Chloé", "Inés", "Anaïs", "Maëlle",
    "Sigrún", "Mckenzie", "Alayna", "Priya", "Mei",
)  # fmt: skip
_FIRST_NAMES_M = (
    "Aaron", "Adam", "Adrian", "Aiden", "Alejandro", "Alex", "Andrew",
    "Angel", "Anthony", "Antonio", "Ashton", "Austin", "Benjamin", "Blake",
    "Brandon", "Brayden", "Brian", "Bryan", "Caleb", "Cameron", "Carlos",
    "Carter", "Charles", "Chase", "Christian", "Christopher", "Cody", "Colin",
    "Connor", "Cooper", "Daniel", "David", "Devin", "Diego", "Dominic",
    "Dylan", "Edward", "Elijah", "Eric", "Ethan", "Evan", "Gabriel", "Gavin",
    "George", "Hassan", "Henry", "Hunter", "Ian", "Isaac", "Isaiah", "Jack",
    "Jackson", "Jacob", "Jake", "Jalen", "James", "Jason", "Jayden", "Jeremiah",
    "Jesus", "John", "Jonathan", "Jordan", "Jose", "Joseph", "Joshua", "Juan",
    "Julian", "Justin", "Kaleb", "Kevin", "Kyle", "Landon", "Levi", "Liam",
    "Logan", "Lucas", "Luis", "Luke", "Malachi", "Marcus", "Mason", "Matthew",
    "Micah", "Michael", "Miguel", "Nathan", "Nicholas", "Noah", "Nolan",
    "Oliver", "Owen", "Parker", "Patrick", "Quentin", "Richard", "Robert",
    "Ryan", "Samuel", "Sean", "Sebastian", "Seth", "Steven", "Thomas",
    "Timothy", "Tristan", "Tyler", "Victor", "Vincent", "William", "Wyatt",
    "Xavier", "Zachary", "Ziad", "José", "Björn", "Ángel", "Søren", "Joaquín",
    "Raphaël", "Jürgen", "Rahul", "Wei", "Omar", "Dmitri",
)  # fmt: skip
_LAST_NAMES = (
    "Adams", "Aguilar", "Alexander", "Allen", "Alvarez", "Anderson", "Andrews",
    "Armstrong", "Arnold", "Austin", "Bailey", "Baker", "Banks", "Barnes",
    "Bell", "Bennett", "Berry", "Black", "Boyd", "Bradley", "Brooks", "Brown",
    "Bryant", "Burns", "Butler", "Campbell", "Carpenter", "Carroll", "Carter",
    "Castillo", "Castro", "Chavez", "Chen", "Clark", "Cole", "Coleman",
    "Collins", "Cook", "Cooper", "Cox", "Crawford", "Cross", "Cruz",
    "Cunningham", "Daniels", "Davis", "Diaz", "Dixon", "Duncan", "Dunn",
    "Edwards", "Elliott", "Ellis", "Evans", "Ferguson", "Fernandez", "Fisher",
    "Flores", "Ford", "Foster", "Fox", "Freeman", "Garcia", "Gardner",
    "Gibson", "Gilbert", "Gomez", "Gonzales", "Gonzalez", "Gordon", "Graham",
    "Grant", "Gray", "Green", "Griffin", "Gutierrez", "Hall", "Hamilton",
    "Hansen", "Harper", "Harris", "Harrison", "Hart", "Hawkins", "Hayes",
    "Henderson", "Henry", "Hernandez", "Herrera", "Hicks", "Hill", "Hoffman",
    "Holmes", "Howard", "Hudson", "Hughes", "Hunt", "Hunter", "Jackson",
    "James", "Jenkins", "Jimenez", "Johnson", "Johnston", "Jones", "Jordan",
    "Kelly", "Kennedy", "Kim", "King", "Knight", "Lane", "Lawrence", "Lee",
    "Lewis", "Long", "Lopez", "Marshall", "Martin", "Martinez", "Mason",
    "Matthews", "Mcdonald", "Medina", "Mendoza", "Meyer", "Miller", "Mills",
    "Mitchell", "Moore", "Morales", "Moreno", "Morgan", "Morris", "Murphy",
    "Murray", "Myers", "Nelson", "Nguyen", "Nichols", "Olson", "Ortiz",
    "Owens", "Palmer", "Park", "Parker", "Patel", "Patterson", "Payne",
    "Perez", "Perkins", "Perry", "Peters", "Peterson", "Phillips", "Pierce",
    "Porter", "Powell", "Price", "Ramirez", "Ramos", "Reed", "Reyes",
    "Reynolds", "Rice", "Richardson", "Riley", "Rivera", "Roberts",
    "Robertson", "Robinson", "Rodriguez", "Rogers", "Romero", "Rose", "Ross",
    "Ruiz", "Russell", "Ryan", "Sanchez", "Sanders", "Santos", "Schmidt",
    "Scott", "Shaw", "Simmons", "Simpson", "Smith", "Snyder", "Spencer",
    "Stephens", "Stevens", "Stewart", "Stone", "Sullivan", "Taylor", "Thomas",
    "Thompson", "Torres", "Tran", "Tucker", "Turner", "Vasquez", "Wagner",
    "Walker", "Wallace", "Walsh", "Wang", "Ward", "Warren", "Washington",
    "Watson", "Weaver", "Webb", "Wells", "West", "Wheeler", "White", "Williams",
    "Willis", "Wilson", "Wong", "Wood", "Woods", "Wright", "Young", "Zhang",
    "Muñoz", "Peña", "Ibáñez", "Müller", "Søndergaard", "Nuñez", "Gómez",
    "O'Connor", "O'Brien", "McCarthy", "Kowalski", "Nowak", "Novak", "Rossi",
    "Russo", "Ferrari", "Esposito", "Romano", "Colombo", "Ricci", "Marino",
    "Greco", "Bruno", "Gallo", "Conti", "De Luca", "Costa", "Giordano",
    "Mancini", "Rizzo", "Lombardi", "Moretti", "Barbieri", "Fontana", "Santoro",
    "Mariani", "Rinaldi", "Caruso", "Ferrara", "Galli", "Martini", "Leone",
    "Longo", "Gentile", "Martinelli", "Vitale", "Lombardo", "Serra", "Coppola",
    "De Santis", "D'Angelo", "Marchetti", "Parisi", "Villa", "Conte",
    "Ferraro", "Ferri", "Fabbri", "Bianco", "Marini", "Grasso", "Valentini",
    "Messina", "Sala", "De Angelis", "Gatti", "Pellegrini", "Palumbo", "Sanna",
    "Farina", "Rizzi", "Monti", "Cattaneo", "Morelli", "Amato", "Silvestri",
    "Mazza", "Testa", "Grassi", "Pellegrino", "Carbone", "Giuliani",
)  # fmt: skip
# (city, state, weight): US cities roughly by population.
_CITIES = (
    ("New York", "NY", 85), ("Los Angeles", "CA", 39), ("Chicago", "IL", 27),
    ("Houston", "TX", 23), ("Phoenix", "AZ", 16), ("Philadelphia", "PA", 16),
    ("San Antonio", "TX", 15), ("San Diego", "CA", 14), ("Dallas", "TX", 13),
    ("San Jose", "CA", 10), ("Austin", "TX", 10), ("Jacksonville", "FL", 9),
    ("Fort Worth", "TX", 9), ("Columbus", "OH", 9), ("Charlotte", "NC", 9),
    ("Indianapolis", "IN", 9), ("San Francisco", "CA", 8), ("Seattle", "WA", 7),
    ("Denver", "CO", 7), ("Washington", "DC", 7), ("Nashville", "TN", 7),
    ("Oklahoma City", "OK", 7), ("El Paso", "TX", 7), ("Boston", "MA", 7),
    ("Portland", "OR", 6), ("Las Vegas", "NV", 6), ("Detroit", "MI", 6),
    ("Memphis", "TN", 6), ("Louisville", "KY", 6), ("Baltimore", "MD", 6),
    ("Milwaukee", "WI", 6), ("Albuquerque", "NM", 6), ("Tucson", "AZ", 5),
    ("Fresno", "CA", 5), ("Sacramento", "CA", 5), ("Mesa", "AZ", 5),
    ("Kansas City", "MO", 5), ("Atlanta", "GA", 5), ("Omaha", "NE", 5),
    ("Raleigh", "NC", 5), ("Miami", "FL", 4), ("Minneapolis", "MN", 4),
    ("Tulsa", "OK", 4), ("Cleveland", "OH", 4), ("Wichita", "KS", 4),
    ("New Orleans", "LA", 4), ("Tampa", "FL", 4), ("Honolulu", "HI", 3),
    ("Anchorage", "AK", 3), ("Newark", "NJ", 3), ("Pittsburgh", "PA", 3),
    ("St. Louis", "MO", 3), ("Cincinnati", "OH", 3), ("Orlando", "FL", 3),
    ("Buffalo", "NY", 3), ("Salt Lake City", "UT", 2), ("Boise", "ID", 2),
    ("Richmond", "VA", 2), ("Birmingham", "AL", 2), ("Des Moines", "IA", 2),
    ("Little Rock", "AR", 2), ("Providence", "RI", 2), ("Columbia", "SC", 2),
    ("Madison", "WI", 2), ("Spokane", "WA", 2), ("Reno", "NV", 2),
    ("Baton Rouge", "LA", 2), ("Knoxville", "TN", 2), ("Hartford", "CT", 1),
    ("Burlington", "VT", 1), ("Manchester", "NH", 1), ("Portland", "ME", 1),
    ("Charleston", "WV", 1), ("Jackson", "MS", 1), ("Sioux Falls", "SD", 1),
    ("Fargo", "ND", 1), ("Billings", "MT", 1), ("Cheyenne", "WY", 1),
    ("Wilmington", "DE", 1),
)  # fmt: skip
# (sentence, retention rule it leads to, weight, range of {n}): what raises a
# risk most, worded as ml/_explain.py words it.
_REASONS = (
    ("songs fell {n}% in the last week compared with the three before",
     "listening fading", 5, (20, 95)),
    ("sessions fell {n}% in the last week compared with the three before",
     "listening fading", 4, (20, 90)),
    ("no songs in the last week, after {n} songs a week in the three before",
     "listening fading", 2, (15, 300)),
    ("last active {n} days before the scoring date",
     "listening fading", 3, (3, 21)),
    ("{n} errors in the last 28 days", "repeated errors", 2, (2, 12)),
    ("{n} visits to the help pages in the last 28 days",
     "repeated errors", 1, (2, 8)),
    ("{n} adverts per hour of music in the last 28 days",
     "adverts on the free tier", 4, (8, 30)),
    ("{n} thumbs down in the last 28 days", "disliking the music", 2, (5, 40)),
    ("{n}% of their ratings in the last 28 days were thumbs down",
     "disliking the music", 1, (20, 70)),
    ("{n} visits to the downgrade page in the last 28 days",
     "thinking of downgrading", 1, (1, 5)),
    ("a customer for only {n} days", "new customer", 2, (2, 59)),
    ("0 friends added in the last 28 days", "few connections", 1, (0, 1)),
)  # fmt: skip
_FREE_ONLY = {"adverts on the free tier"}
_PAID_ONLY = {"thinking of downgrading"}
_FREE_SHARE = 0.78  # sparkify.generate: 75% start free, and every new sign-up
_CANCELLED_SHARE = 0.20
_WINDOWS = {"7d": (1, 7), "28d": (1, 28), "prev_28d": (29, 56)}


@dataclass(frozen=True)
class Built:
    """What building the serving database took."""

    seconds: float
    publish_seconds: float
    bytes: int
    customers: int
    scores: int
    daily_rows: int


def build_serving(path: Path, customers: int, daily_days: int, seed: int) -> Built:
    """Write a serving database of synthetic customers at ``path`` via publish()."""
    if customers < 10:
        raise ValueError(f"--customers must be at least 10, got {customers:,}")
    if not 0 <= daily_days <= ACTIVITY_DAYS:
        raise ValueError(
            f"--daily-days must be from 0 to {ACTIVITY_DAYS}, got {daily_days}"
        )
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    frame = _customers(rng, customers)
    scores = _scores(rng, frame)
    daily = _daily_activity(rng, frame, daily_days)
    facts = {
        "as_of": AS_OF.isoformat(),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model_version": MODEL_VERSION,
        "horizon_days": "28",
        "model_status": f"Model {MODEL_VERSION} scored this data.",
        "model_trained_at": f"{AS_OF.isoformat()}T05:12:40+00:00",
    }
    generated = time.monotonic()
    publish(f"sqlite:///{path}", frame, scores, facts, daily_activity=daily)
    published = time.monotonic()
    return Built(
        seconds=published - started,
        publish_seconds=published - generated,
        bytes=path.stat().st_size,
        customers=len(frame),
        scores=len(scores),
        daily_rows=len(daily),
    )


def _iso(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds as ISO 8601 strings in UTC ending in Z, like the pipeline's."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return np.char.add(text.astype(str), "Z")


def _skewed_choice(rng: np.random.Generator, options: Sequence, size: int) -> list:
    """Draw from ``options`` with weights falling off like real name frequencies."""
    weights = 1.0 / (np.arange(len(options)) + 8.0)
    order = rng.permutation(len(options))  # which names are the common ones
    picks = rng.choice(len(options), size=size, p=weights / weights.sum())
    return [options[i] for i in order[picks]]


def _customers(rng: np.random.Generator, count: int) -> pd.DataFrame:
    as_of = int(dt.datetime.combine(AS_OF, dt.time(), dt.UTC).timestamp())
    day = 86_400
    # IDs are numbers as strings with gaps, as in the logs; unknown ones are
    # looked for above 3 * count.
    ids = (rng.choice(3 * count, size=count, replace=False) + 1).astype(str)
    gender = np.where(rng.random(count) < 0.5, "F", "M")
    female = gender == "F"
    first = np.empty(count, dtype=object)
    first[female] = _skewed_choice(rng, _FIRST_NAMES_F, int(female.sum()))
    first[~female] = _skewed_choice(rng, _FIRST_NAMES_M, int((~female).sum()))
    last = np.array(_skewed_choice(rng, _LAST_NAMES, count), dtype=object)
    cities, states, weights = zip(*_CITIES, strict=True)
    city = rng.choice(len(cities), size=count, p=np.array(weights) / sum(weights))
    location = np.array([f"{c}, {s}" for c, s in zip(cities, states, strict=True)])
    level = np.where(rng.random(count) < _FREE_SHARE, "free", "paid")

    # Registration up to about four years back; the logs start 60 days back.
    tenure = np.minimum(1 + rng.exponential(300, count).astype(int), 1500)
    registered = as_of - tenure * day - rng.integers(0, day, count)
    window_start = as_of - ACTIVITY_DAYS * day
    first_event = np.maximum(registered, window_start) + rng.integers(0, 3 * day, count)
    first_event = np.minimum(first_event, as_of - 3600)
    cancelled = rng.random(count) < _CANCELLED_SHARE
    recency = (rng.exponential(3.0, count) * day).astype(np.int64)
    last_active = np.maximum(as_of - 1 - recency, first_event)
    cancelled_at = first_event + (rng.random(count) * (as_of - first_event)).astype(
        np.int64
    )
    last_active = np.where(cancelled, cancelled_at, last_active)

    frame = pd.DataFrame(
        {
            "customer_id": ids,
            "first_name": first,
            "last_name": last,
            "gender": gender,
            "location": location[city],
            "state": np.array(states)[city],
            "level": level,
            "registered_at": _iso(registered),
            "first_event_at": _iso(first_event),
            "last_active_at": _iso(last_active),
            "tenure_days": tenure,
            "is_cancelled": cancelled,
            "cancelled_at": np.where(cancelled, _iso(cancelled_at), None),
        }
    )
    frame = pd.concat(
        [frame, _window_activity(rng, first_event, last_active, level, as_of)],
        axis=1,
    )
    # Sorted by key, the primary-key index is appended to, not rewritten.
    return frame.sort_values("customer_id", ignore_index=True)


def _window_activity(
    rng: np.random.Generator,
    first_event: np.ndarray,
    last_active: np.ndarray,
    level: np.ndarray,
    as_of: int,
) -> pd.DataFrame:
    """Activity in each window, only on days the customer was around."""
    count = len(first_event)
    day = 86_400
    sessions_per_day = rng.lognormal(np.log(0.5), 0.8, count)
    songs_per_session = rng.lognormal(np.log(14), 0.5, count)
    free = level == "free"
    columns: dict[str, np.ndarray] = {}
    # The 28-day window first: the 7-day one is drawn out of it, so 7d <= 28d.
    for window in ("28d", "prev_28d", "7d"):
        near, far = _WINDOWS[window]
        start, end = as_of - far * day, as_of - (near - 1) * day
        around = np.clip(
            (np.minimum(last_active, end) - np.maximum(first_event, start)) / day,
            0,
            far - near + 1,
        )
        if window == "7d":
            share = np.divide(
                around, columns["around_28d"], out=np.zeros(count), where=around > 0
            )
            sessions = rng.binomial(columns["sessions_28d"], np.minimum(share, 1))
            songs = rng.binomial(
                columns["songs_28d"],
                np.divide(
                    sessions,
                    columns["sessions_28d"],
                    out=np.zeros(count),
                    where=columns["sessions_28d"] > 0,
                ),
            )
        else:
            sessions = rng.poisson(sessions_per_day * around)
            songs = rng.poisson(sessions * songs_per_session)
        columns[f"around_{window}"] = around
        columns[f"sessions_{window}"] = sessions
        columns[f"songs_{window}"] = songs

    for window in ("28d", "prev_28d", "7d"):
        songs = columns[f"songs_{window}"]
        if window == "7d":
            share = np.divide(
                songs,
                columns["songs_28d"],
                out=np.zeros(count),
                where=columns["songs_28d"] > 0,
            )
            for measure in ("thumbs_up", "thumbs_down", "adverts", "errors"):
                columns[f"{measure}_7d"] = rng.binomial(
                    columns[f"{measure}_28d"], share
                )
            minutes = columns["listening_minutes_28d"] * share
        else:
            columns[f"thumbs_up_{window}"] = rng.binomial(songs, 0.055)
            columns[f"thumbs_down_{window}"] = rng.binomial(songs, 0.012)
            columns[f"adverts_{window}"] = np.where(free, rng.binomial(songs, 0.08), 0)
            columns[f"errors_{window}"] = rng.binomial(songs, 0.001)
            minutes = songs * rng.normal(4.1, 0.3, count).clip(2.5)
        columns[f"listening_minutes_{window}"] = np.round(minutes, 1)
    return pd.DataFrame(
        {name: values for name, values in columns.items() if "around" not in name}
    )


def _scores(rng: np.random.Generator, customers: pd.DataFrame) -> pd.DataFrame:
    """A score for every active customer, with reasons and a suggestion."""
    active = customers.loc[~customers["is_cancelled"], ["customer_id", "level"]]
    count = len(active)
    probability = np.round(rng.beta(0.6, 5.0, count), 5)
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    actions = {rule["name"]: rule["action"] for rule in rules["rules"]}

    # Three different reasons each, by weight (Efraimidis-Spirakis keys);
    # none that cannot apply to the customer's level.
    weights = np.array([reason[2] for reason in _REASONS], dtype=float)
    keys = rng.random((count, len(_REASONS))) ** (1 / weights)
    paid = (active["level"] == "paid").to_numpy()
    for i, (_, rule, _, _) in enumerate(_REASONS):
        if rule in _FREE_ONLY:
            keys[paid, i] = -1
        if rule in _PAID_ONLY:
            keys[~paid, i] = -1
    chosen = np.argsort(-keys, axis=1)[:, :3]
    # Fewer features raise some customers' risk: 10% get two reasons, 5% one.
    reasons_count = rng.choice([3, 2, 1], size=count, p=[0.85, 0.10, 0.05])
    low, high = np.array([reason[3] for reason in _REASONS]).T
    numbers = rng.integers(low[chosen], high[chosen] + 1)
    push = np.sort(rng.gamma(2.0, 0.3, size=(count, 3)), axis=1)[:, ::-1]

    frame = pd.DataFrame(
        {
            "customer_id": active["customer_id"].to_numpy(),
            "churn_probability": probability,
            "risk_band": [risk_band(p) for p in probability],
            "model_version": MODEL_VERSION,
            "cutoff_date": AS_OF.isoformat(),
        }
    )
    for slot in range(3):
        kept = reasons_count > slot
        frame[f"reason_{slot + 1}"] = [
            _REASONS[reason][0].format(n=number) if keep else None
            for reason, number, keep in zip(
                chosen[:, slot], numbers[:, slot], kept, strict=True
            )
        ]
        frame[f"reason_{slot + 1}_log_odds"] = np.where(
            kept, np.round(push[:, slot], 3), np.nan
        )
    first_rule = np.array([_REASONS[reason][1] for reason in range(len(_REASONS))])[
        chosen[:, 0]
    ]
    frame["action_rule"] = first_rule
    frame["action"] = [actions.get(rule, rules["default"]) for rule in first_rule]
    frame["scored_at"] = f"{AS_OF.isoformat()}T06:00:00+00:00"
    return frame


def _daily_activity(
    rng: np.random.Generator, customers: pd.DataFrame, days: int
) -> pd.DataFrame:
    """Up to ``days`` active days per customer in the 60 days before as_of.

    The days fall between the customer's first event and last activity; the
    figures are drawn per day and do not add up to the window totals.
    """
    columns = ["sessions", "songs", "listening_minutes"]
    columns += ["thumbs_up", "thumbs_down", "adverts"]
    if days == 0:
        return pd.DataFrame(columns=["customer_id", "activity_date", *columns])
    count = len(customers)
    as_of = np.datetime64(AS_OF.isoformat(), "D")
    first = customers["first_event_at"].str[:10].to_numpy().astype("datetime64[D]")
    last = customers["last_active_at"].str[:10].to_numpy().astype("datetime64[D]")
    first = np.maximum(first, as_of - ACTIVITY_DAYS)
    last = np.minimum(last, as_of - 1)
    span = np.maximum((last - first).astype(int) + 1, 1)
    # ``days`` distinct slots out of 60, squeezed into each customer's span;
    # squeezing can land two slots on one day, and duplicates are dropped.
    slots = np.argpartition(rng.random((count, ACTIVITY_DAYS)), days - 1, axis=1)
    slots = slots[:, :days]
    offsets = (slots * span[:, None]) // ACTIVITY_DAYS
    dates = (last[:, None] - offsets).ravel()
    sessions = 1 + rng.poisson(0.6, dates.size)
    songs = rng.poisson(sessions * 14)
    free = np.repeat((customers["level"] == "free").to_numpy(), days)
    daily = pd.DataFrame(
        {
            "customer_id": np.repeat(customers["customer_id"].to_numpy(), days),
            "activity_date": np.datetime_as_string(dates, unit="D"),
            "sessions": sessions,
            "songs": songs,
            "listening_minutes": np.round(songs * 4.1, 1),
            "thumbs_up": rng.binomial(songs, 0.055),
            "thumbs_down": rng.binomial(songs, 0.012),
            "adverts": np.where(free, rng.binomial(songs, 0.08), 0),
        }
    )
    daily = daily.drop_duplicates(["customer_id", "activity_date"])
    return daily.sort_values(["customer_id", "activity_date"], ignore_index=True)


@dataclass
class Population:
    """The customers questions are drawn from, read back from the database."""

    ids: np.ndarray
    first_names: np.ndarray
    last_names: np.ndarray
    states: np.ndarray
    unknown_floor: int

    @classmethod
    def read(cls, path: Path) -> Population:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            rows = connection.execute(
                "select customer_id, first_name, last_name, state from customers"
            ).fetchall()
        if not rows:
            raise ValueError(f"the serving database {path} holds no customers")
        ids, first, last, states = (
            np.array(column) for column in zip(*rows, strict=True)
        )
        numeric = [int(i) for i in ids if i.isdigit()]
        return cls(ids, first, last, states, max(numeric, default=0) + 1)


@dataclass(frozen=True)
class Question:
    """One message, and what its reply must contain to count as an answer."""

    message: str
    expect: re.Pattern[str] | None


@dataclass(frozen=True)
class Kind:
    """A kind of question an agent asks; figures are reported per kind."""

    about: str
    make: Callable[[Population, np.random.Generator], Question]
    customer_answer: bool = False


def _card_for(customer_id: str) -> re.Pattern[str]:
    return re.compile(rf"\bcustomer {re.escape(customer_id)}\b")


def _some_id(population: Population, rng: np.random.Generator) -> str:
    return str(population.ids[rng.integers(len(population.ids))])


def _ask_id(population: Population, rng: np.random.Generator) -> Question:
    customer_id = _some_id(population, rng)
    return Question(customer_id, _card_for(customer_id))


def _ask_ads(population: Population, rng: np.random.Generator) -> Question:
    customer_id = _some_id(population, rng)
    return Question(
        f"customer {customer_id} is asking about ads", _card_for(customer_id)
    )


def _ask_unknown(population: Population, rng: np.random.Generator) -> Question:
    number = str(population.unknown_floor + int(rng.integers(1_000_000)))
    return Question(number, re.compile(rf"`{number}` was not found"))


def _ask_name(population: Population, rng: np.random.Generator) -> Question:
    i = rng.integers(len(population.ids))
    first, last = population.first_names[i], population.last_names[i]
    # The card of the one customer with that name, or the list to pick from.
    return Question(
        f"{first} {last}",
        re.compile(rf"{re.escape(first)} {re.escape(last)}( · customer |\s*\|)"),
    )


def _ask_top_risk(population: Population, rng: np.random.Generator) -> Question:
    state = population.states[rng.integers(len(population.states))]
    return Question(
        f"top 10 at-risk paid customers in {state}",
        re.compile(rf"paid customers in {re.escape(state)} most likely to cancel"),
    )


def _ask_rate_by_level(population: Population, rng: np.random.Generator) -> Question:
    return Question("churn rate by level", re.compile(r"\*\*Churn rate by level\*\*"))


# A kind without an expected pattern would be checked only for a non-empty
# reply.
KINDS: dict[str, Kind] = {
    "id": Kind("a bare customer ID", _ask_id, customer_answer=True),
    "ads": Kind('"customer <id> is asking about ads"', _ask_ads, customer_answer=True),
    "unknown": Kind("an ID no customer has", _ask_unknown),
    "name": Kind("a customer's first and last name", _ask_name),
    "top_risk": Kind('"top 10 at-risk paid customers in <ST>"', _ask_top_risk),
    "rate_by_level": Kind('"churn rate by level"', _ask_rate_by_level),
}
DEFAULT_MIX = "id=45,ads=45,unknown=10"


def parse_mix(text: str) -> dict[str, float]:
    """``kind=weight,...`` as shares that add up to 1."""
    mix: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in KINDS:
            raise ValueError(
                f"--mix: unknown kind {name!r}; choose from {', '.join(KINDS)}"
            )
        try:
            mix[name] = float(weight)
        except ValueError:
            raise ValueError(
                f"--mix: {part!r} needs a number after '=', e.g. {name}=10"
            ) from None
        if mix[name] < 0:
            raise ValueError(f"--mix: weight of {name} must not be negative")
    total = sum(mix.values())
    if total <= 0:
        raise ValueError(f"--mix needs at least one positive weight, got {text!r}")
    return {name: weight / total for name, weight in mix.items() if weight > 0}


@dataclass
class Outcome:
    """One question asked: its kind, whether it was answered, how long it took."""

    kind: str
    ok: bool
    seconds: float
    error: str = ""


class AskError(Exception):
    """The app did not answer a question."""


async def ask(client: httpx.AsyncClient, message: str, api: str = "call") -> str:
    """Ask the app's ``ask`` endpoint the way a Gradio client does; the reply.

    ``api="call"`` goes through the queue (POST, then the event stream);
    ``"run"`` is one POST to ``/gradio_api/run/ask``, which Gradio serves
    only for an endpoint declared with ``queue=False``.
    """
    if api == "run":
        posted = await client.post("/gradio_api/run/ask", json={"data": [message]})
        if posted.status_code != 200:
            raise AskError(f"POST answered HTTP {posted.status_code}")
        return posted.json()["data"][0]
    posted = await client.post("/gradio_api/call/ask", json={"data": [message]})
    if posted.status_code != 200:
        raise AskError(f"POST answered HTTP {posted.status_code}")
    event_id = posted.json()["event_id"]
    event = ""
    async with client.stream("GET", f"/gradio_api/call/ask/{event_id}") as stream:
        if stream.status_code != 200:
            raise AskError(f"GET answered HTTP {stream.status_code}")
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = line.removeprefix("data:").strip()
                if event == "error":
                    raise AskError(f"error event: {data[:200]}")
                return json.loads(data)[0]
    raise AskError(f"the stream ended without a complete event (last: {event!r})")


@dataclass
class Load:
    """Closed-loop agents: ask, wait for the answer, (think,) ask again."""

    base_url: str
    population: Population
    mix: dict[str, float]
    concurrency: int
    think_seconds: float
    timeout: float
    seed: int
    api: str = "call"
    outcomes: list[Outcome] = field(default_factory=list)
    asked: int = 0  # warm-up included: what the server has answered in all

    async def run(
        self, warmup: float, seconds: float, on_start: Callable[[], None]
    ) -> float:
        """Warm up, call ``on_start``, measure for ``seconds``; the seconds measured."""
        limits = httpx.Limits(max_connections=2 * self.concurrency + 4)
        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=self.timeout
        ) as client:
            await self._phase(client, warmup, keep=False)
            on_start()
            started = time.perf_counter()
            await self._phase(client, seconds, keep=True)
            return time.perf_counter() - started

    async def _phase(self, client: httpx.AsyncClient, seconds: float, keep: bool):
        deadline = time.perf_counter() + seconds
        offset = 0 if keep else 10_000
        await asyncio.gather(
            *(
                self._agent(client, deadline, keep, self.seed + offset + agent)
                for agent in range(self.concurrency)
            )
        )

    async def _agent(
        self, client: httpx.AsyncClient, deadline: float, keep: bool, seed: int
    ) -> None:
        rng = np.random.default_rng(seed)
        names = list(self.mix)
        shares = np.array([self.mix[name] for name in names])
        # Agents that think do not ask in step: each starts at a random
        # moment and thinks for an exponentially distributed time.
        if self.think_seconds:
            await asyncio.sleep(rng.uniform(0, self.think_seconds))
        while time.perf_counter() < deadline:
            kind = names[rng.choice(len(names), p=shares)]
            question = KINDS[kind].make(self.population, rng)
            started = time.perf_counter()
            self.asked += 1
            try:
                reply = await ask(client, question.message, self.api)
                error = _wrong(reply, question)
            except (AskError, httpx.HTTPError, ValueError, KeyError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            if keep:
                self.outcomes.append(
                    Outcome(kind, not error, time.perf_counter() - started, error)
                )
            if self.think_seconds:
                left = deadline - time.perf_counter()
                await asyncio.sleep(min(rng.exponential(self.think_seconds), left))


def _wrong(reply: object, question: Question) -> str:
    """Why ``reply`` does not answer ``question``; empty when it does."""
    if not isinstance(reply, str) or not reply.strip():
        return f"empty reply {reply!r}"
    if question.expect is not None and not question.expect.search(reply):
        return f"{question.message!r} got {reply[:80]!r}"
    return ""


@dataclass(frozen=True)
class Figures:
    """Latency percentiles of one kind of question, in milliseconds."""

    requests: int
    failures: int
    per_second: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, outcomes: Sequence[Outcome], seconds: float) -> Figures:
        answered = np.array([o.seconds for o in outcomes if o.ok]) * 1000
        if answered.size == 0:
            nan = float("nan")
            return cls(len(outcomes), len(outcomes), 0.0, nan, nan, nan, nan)
        p50, p95, p99 = np.percentile(answered, [50, 95, 99])
        return cls(
            requests=len(outcomes),
            failures=len(outcomes) - answered.size,
            per_second=answered.size / seconds,
            p50=float(p50),
            p95=float(p95),
            p99=float(p99),
            max=float(answered.max()),
        )


class Server:
    """``sparkify serve`` in a process of its own, stopped however we leave."""

    def __init__(self, url: str, log_path: Path, env: dict[str, str]):
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = Path(sys.executable).with_name("sparkify")
        if not command.exists():
            raise FileNotFoundError(
                f"{command} not found: run scripts/setup.sh and start this "
                "script with .venv/bin/python"
            )
        self.command = [str(command), "serve", "--db", url, "--port", str(self.port)]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            self.command, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )

    def wait_until_answering(self, timeout: float) -> float:
        """Seconds until the app answers HTTP; raises if it dies or takes too long."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the app exited with code {self.process.returncode} before "
                    f"answering; its log {self.log_path} ends:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/gradio_api/info", timeout=2).is_success:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(
            f"the app did not answer on {self.base_url} within {timeout:.0f} s; "
            f"its log {self.log_path} ends:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_bytes(pid: int) -> int:
    """The process's resident memory (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        status = Path(f"/proc/{pid}/status").read_text()
        kib = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(kib.group(1)) * 1024 if kib else 0
    return psutil.Process(pid).memory_info().rss


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


_SITECUSTOMIZE = '''"""Log chat_ui at INFO: sparkify serve sets up no logging."""

import logging

_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(created).3f %(name)s: %(message)s"))
logging.getLogger("chat_ui").addHandler(_handler)
logging.getLogger("chat_ui").setLevel(logging.INFO)
'''
_ANSWERED = re.compile(r"answered kind=(\S+) in (\d+) ms")


def handler_times(log_text: str) -> dict[str, np.ndarray]:
    """The handler's own milliseconds per kind, from "answered kind=..." lines."""
    times: dict[str, list[float]] = {}
    for kind, ms in _ANSWERED.findall(log_text):
        times.setdefault(kind, []).append(float(ms))
    return {kind: np.array(values) for kind, values in times.items()}


def _server_env(scratch: Path, handler_log: bool, app_path: Path | None) -> dict:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    paths = [str(app_path)] if app_path else []
    if handler_log:
        site = scratch / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        paths.append(str(site))
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _row(name: str, figures: Figures) -> str:
    return (
        f"{name:<26}{figures.requests:>9,}{figures.failures:>9,}"
        f"{figures.per_second:>11.1f}{figures.p50:>8.0f}{figures.p95:>8.0f}"
        f"{figures.p99:>8.0f}{figures.max:>8.0f}"
    )


def report(
    outcomes: Sequence[Outcome], seconds: float, mix: dict[str, float]
) -> Figures:
    """Print the table per kind; the customer answers' pooled figures."""
    print(
        f"{'kind':<26}{'requests':>9}{'failures':>9}{'answers/s':>11}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}"
    )
    for kind in mix:
        print(_row(kind, Figures.of([o for o in outcomes if o.kind == kind], seconds)))
    customer = [o for o in outcomes if KINDS[o.kind].customer_answer]
    pooled = Figures.of(customer, seconds)
    shown = "+".join(kind for kind in mix if KINDS[kind].customer_answer)
    print(_row(f"customer answer ({shown})", pooled))
    print(_row("all", Figures.of(outcomes, seconds)))
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed[:5]:
        print(f"  failure ({outcome.kind}): {outcome.error}")
    if len(failed) > 5:
        print(f"  ... and {len(failed) - 5:,} more failures")
    return pooled


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--daily-days", type=int, default=8, help="active days per customer"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--db", type=Path, default=None, help="SQLite file to reuse, or build and keep"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir")
    parser.add_argument("--concurrency", type=int, default=TARGET_CONCURRENCY)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds")
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="mean think time per question"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per question")
    parser.add_argument(
        "--mix", default=DEFAULT_MIX, help=f"kind=weight,... of {', '.join(KINDS)}"
    )
    parser.add_argument(
        "--handler-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log the handler's own times in the server",
    )
    parser.add_argument(
        "--app-path",
        type=Path,
        default=None,
        help="folder put first on the server's PYTHONPATH (a changed chat_ui/)",
    )
    parser.add_argument(
        "--api",
        choices=("call", "run"),
        default="call",
        help="queued /gradio_api/call/ask, or /gradio_api/run/ask (queue=False)",
    )
    parser.add_argument("--start-timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        parser.error(str(exc))
    if args.concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.seconds <= 0 or args.warmup < 0 or args.think_ms < 0:
        parser.error(
            "--seconds must be positive, --warmup and --think-ms not negative; "
            f"got {args.seconds}, {args.warmup} and {args.think_ms}"
        )

    # A plain kill stops the run the way Ctrl-C does: the app is stopped
    # and the scratch directory removed on the way out.
    signal.signal(signal.SIGTERM, _interrupted)
    scratch = Path(tempfile.mkdtemp(prefix="sparkify-app-bench-"))
    path = args.db.resolve() if args.db else scratch / "serving.db"
    server = None
    try:
        if path.exists():
            print(f"database       {path} (reused, {path.stat().st_size:,} bytes)")
        else:
            print(
                f"building       {args.customers:,} customers into {path} ...",
                flush=True,
            )
            built = build_serving(path, args.customers, args.daily_days, args.seed)
            print(
                f"database       {built.customers:,} customers, {built.scores:,} "
                f"scores, {built.daily_rows:,} daily rows, {built.bytes:,} bytes; "
                f"built in {built.seconds:.1f} s ({built.publish_seconds:.1f} s "
                "of it in publish())"
            )
        population = Population.read(path)

        load_before = os.getloadavg()
        server = Server(
            f"sqlite:///{path}",
            scratch / "server.log",
            _server_env(scratch, args.handler_log, args.app_path),
        )
        print(f"server         {' '.join(server.command)}")
        startup = server.wait_until_answering(args.start_timeout)
        print(f"server start   answering after {startup:.1f} s")

        load = Load(
            base_url=server.base_url,
            population=population,
            mix=mix,
            concurrency=args.concurrency,
            think_seconds=args.think_ms / 1000,
            timeout=args.timeout,
            seed=args.seed,
            api=args.api,
        )
        pid = server.process.pid
        start: dict[str, float] = {}

        def on_start() -> None:
            start["log"] = server.log_path.stat().st_size
            start["server"] = cpu_seconds(pid)
            start["client"] = time.process_time()

        measured = asyncio.run(load.run(args.warmup, args.seconds, on_start))
        server_cpu = cpu_seconds(pid) - start["server"]
        client_cpu = time.process_time() - start["client"]
        rss, server_threads = resident_bytes(pid), threads(pid)
        with server.log_path.open("rb") as log_file:
            log_file.seek(int(start["log"]))
            log_text = log_file.read().decode("utf-8", errors="replace")
        load_after = os.getloadavg()
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            if args.db is None:
                path.unlink(missing_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"scratch        {scratch} ({'kept' if args.keep else 'removed'})")
    print(
        f"machine        {os.cpu_count()} CPUs; load average (1, 5, 15 min) "
        f"{_load(load_before)} before, {_load(load_after)} after"
    )
    print(
        f"run            {args.concurrency} agents, {measured:.1f} s "
        f"measured after {args.warmup:.0f} s of warm-up, mean think time "
        f"{args.think_ms:.0f} ms, mix {args.mix}, API /gradio_api/{args.api}/ask"
    )
    print(
        f"server         {rss / 2**20:,.0f} MiB resident after the run, "
        f"{server_threads} threads, {server_cpu:.1f} CPU s in the measured window "
        f"({server_cpu / measured:.0%} of one core, "
        f"{1000 * server_cpu / max(len(load.outcomes), 1):.1f} ms per question, "
        f"{load.asked:,} questions since it started); this client "
        f"{client_cpu:.1f} CPU s"
    )
    print()
    pooled = report(load.outcomes, measured, mix)
    times = handler_times(log_text)
    if times:
        print()
        print("the handler's own time in the measured window (chat_ui log), ms:")
        for kind, values in sorted(times.items()):
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            print(
                f"  kind={kind:<10}{values.size:>9,} answers  p50 {p50:.0f}  "
                f"p95 {p95:.0f}  p99 {p99:.0f}  max {values.max():.0f}"
            )
    print()
    met = (
        pooled.requests > 0
        and pooled.failures == 0
        and pooled.p95 < TARGET_P95_MS
        and args.concurrency >= TARGET_CONCURRENCY
    )
    failures = f", {pooled.failures:,} failures" if pooled.failures else ""
    print(
        f"customer answer p95 {pooled.p95:.0f} ms (target < {TARGET_P95_MS:.0f} ms "
        f"with {TARGET_CONCURRENCY} concurrent agents; measured with "
        f"{args.concurrency}{failures}): {'met' if met else 'not met'}"
    )
    return 0


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _load(averages: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in averages)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the app was stopped", file=sys.stderr)
        sys.exit(130)
