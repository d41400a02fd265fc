"""Why a customer scores high: the strongest drivers, as sentences an agent can say.

XGBoost's feature contributions (SHAP values, ``pred_contribs=True``) split
each customer's score into one part per feature. The indicators of one text
column (``device_type=phone``, ...) are summed back into their column. The
three columns with the largest positive parts are the drivers; each is said
with the customer's own figures ("listening fell 60% in the last week
compared with the three before").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xgboost

from ml._features import source_column

__all__ = [
    "DRIVERS",
    "KNOWN_COLUMNS",
    "Driver",
    "describe",
    "drivers",
    "feature_importance",
    "feature_label",
    "top_drivers",
]

DRIVERS = 3
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Driver:
    """One feature column's push on a customer's score (log-odds)."""

    column: str
    contribution: float
    sentence: str


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if np.isnan(number) else number


def _n(count: float, noun: str, plural: str | None = None) -> str:
    count = round(count)
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _per_100(value: float) -> str:
    return f"{100 * value:.1f}".rstrip("0").rstrip(".")


def _trend(noun: str, column: str, unit: str) -> Callable[[Row], str]:
    """Last 7 days against the weekly mean of the 21 before, from the counts."""

    def say(row: Row) -> str:
        week, month = _num(row[f"{column}_7d"]), _num(row[f"{column}_28d"])
        before = (month - week) / 3
        if before == 0:
            if week == 0:
                return f"no {noun} at all in the last four weeks"
            return f"{noun} only started in the last week"
        if week == 0:
            return (
                f"no {noun} in the last week, after {_n(before, unit)} a week in "
                "the three before"
            )
        change = week / before - 1
        if abs(change) < 0.005:
            return f"{noun} in the last week was the same as in the three before"
        direction = "fell" if change < 0 else "rose"
        return (
            f"{noun} {direction} {abs(change):.0%} in the last week compared "
            "with the three before"
        )

    return say


def _adverts_per_hour(row: Row) -> str:
    adverts = _num(row["count_adverts_28d"])
    hours = _num(row["listening_seconds_28d"]) / 3600
    if hours == 0:
        return f"{_n(adverts, 'advert')} in the last 28 days and no music played"
    rate = adverts / hours
    shown = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}".removesuffix(".0")
    noun = "advert" if shown == "1" else "adverts"
    return f"{shown} {noun} per hour of music in the last 28 days"


def _recency(row: Row) -> str:
    days = round(_num(row["days_since_last_activity"]))
    if days > 28:
        return "no listening at all in the last 28 days"
    if days <= 1:
        return "last active the day before the scoring date"
    return f"last active {days} days before the scoring date"


def _tenure(row: Row) -> str:
    days = _num(row["tenure_days"])
    return f"a customer for {'only ' if days < 60 else ''}{_n(days, 'day')}"


def _level_changes(row: Row) -> str:
    changes = _num(row["count_level_changes"])
    if changes == 0:
        return "has never changed subscription level"
    return f"changed subscription level {_n(changes, 'time')}"


def _last_level_change(row: Row) -> str:
    days = _num(row["days_since_last_level_change"])
    if _num(row.get("count_level_changes", 0)) == 0:
        return f"has kept the same subscription level for all {_n(days, 'day')}"
    return f"last changed subscription level {_n(days, 'day')} ago"


_NAMES = {
    "ios": "iOS",
    "macos": "macOS",
    "android": "Android",
    "windows": "Windows",
    "linux": "Linux",
    "internet explorer": "Internet Explorer",
    "firefox": "Firefox",
    "chrome": "Chrome",
    "safari": "Safari",
}


def _text(template: str, unknown: str) -> Callable[[Row, str], str]:
    def say(row: Row, column: str) -> str:
        value = row.get(column)
        if value in (None, "unknown") or (isinstance(value, float) and np.isnan(value)):
            return unknown
        return template.format(_NAMES.get(str(value), str(value)))

    return say


# Sentence makers per feature column; each takes the customer's row of raw
# mart values. Windowed counts share one maker per measure.
_WINDOWED: dict[str, tuple[str, str | None]] = {
    "count_sessions": ("session", None),
    "count_songs": ("song played", "songs played"),
    "count_distinct_artists": ("different artist", None),
}
_SENTENCES: dict[str, Callable[[Row, str], str]] = {
    "days_since_last_activity": lambda row, c: _recency(row),
    "tenure_days": lambda row, c: _tenure(row),
    "songs_7d_vs_prev_21d_ratio": lambda row, c: _trend(
        "listening", "count_songs", "song"
    )(row),
    "sessions_7d_vs_prev_21d_ratio": lambda row, c: _trend(
        "visits", "count_sessions", "session"
    )(row),
    "count_thumbs_up_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'thumbs up', 'thumbs up')} in the last 28 days"
    ),
    "count_thumbs_down_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'thumbs down', 'thumbs down')} in the last 28 days"
    ),
    "thumbs_up_per_song_28d": lambda row, c: (
        f"{_per_100(_num(row[c]))} thumbs up per 100 songs in the last 28 days"
    ),
    "thumbs_down_per_song_28d": lambda row, c: (
        f"{_per_100(_num(row[c]))} thumbs down per 100 songs in the last 28 days"
    ),
    "thumbs_down_share_28d": lambda row, c: (
        f"{_num(row[c]):.0%} of their ratings in the last 28 days were thumbs down"
    ),
    "count_friends_added_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'friend')} added in the last 28 days"
    ),
    "count_playlist_adds_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'song')} added to playlists in the last 28 days"
    ),
    "playlist_adds_per_song_28d": lambda row, c: (
        f"{_per_100(_num(row[c]))} playlist additions per 100 songs in the last 28 days"
    ),
    "count_errors_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'error')} in the last 28 days"
    ),
    "count_help_visits_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'visit')} to the help pages in the last 28 days"
    ),
    "count_settings_visits_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'visit')} to the settings page in the last 28 days"
    ),
    "count_downgrade_visits_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'visit')} to the downgrade page in the last 28 days"
    ),
    "count_adverts_28d": lambda row, c: (
        f"{_n(_num(row[c]), 'advert')} in the last 28 days"
    ),
    "adverts_per_song_28d": lambda row, c: _adverts_per_hour(row),
    "is_paid": lambda row, c: (
        "on the paid tier" if _num(row[c]) else "on the free tier, with adverts"
    ),
    "paid_days_share_28d": lambda row, c: (
        f"on the paid tier on {_num(row[c]):.0%} of their active days in the last "
        "28 days"
    ),
    "count_level_changes": lambda row, c: _level_changes(row),
    "days_since_last_level_change": lambda row, c: _last_level_change(row),
    "device_type": _text("listens on a {}", "no device seen in the last 28 days"),
    "os_family": _text("uses {}", "no operating system seen in the last 28 days"),
    "browser": _text("listens in {}", "no browser seen in the last 28 days"),
    "state": _text("lives in {}", "no state on record"),
}
for _window in (7, 14, 28):
    for _measure, (_noun, _plural) in _WINDOWED.items():
        _SENTENCES[f"{_measure}_{_window}d"] = (
            lambda row, c, noun=_noun, plural=_plural, window=_window: (
                f"{_n(_num(row[c]), noun, plural)} in the last {window} days"
            )
        )
    _SENTENCES[f"listening_seconds_{_window}d"] = lambda row, c, window=_window: (
        f"{_num(row[c]) / 3600:,.1f} hours of music in the last {window} days"
    )
    _SENTENCES[f"count_active_days_{_window}d"] = lambda row, c, window=_window: (
        f"active on {round(_num(row[c]))} of the last {window} days"
    )

KNOWN_COLUMNS = frozenset(_SENTENCES)


def describe(column: str, row: Row) -> str:
    """The sentence for one feature column, with the customer's figures."""
    say = _SENTENCES.get(column)
    if say is None:
        return f"{column.replace('_', ' ')} is {row.get(column)}"
    return say(row, column)


# Short names for charts; a column not here is named by rule in feature_label.
_LABELS = {
    "tenure_days": "days since sign-up",
    "songs_7d_vs_prev_21d_ratio": "songs: last week vs the three before",
    "sessions_7d_vs_prev_21d_ratio": "sessions: last week vs the three before",
    "thumbs_down_share_28d": "share of ratings thumbs down, last 28 days",
    "paid_days_share_28d": "share of active days paid, last 28 days",
    "is_paid": "on the paid tier",
    "os_family": "operating system",
}
_NOUNS = {"listening_seconds": "listening time"}
_WINDOW = re.compile(r"(?P<measure>.+)_(?P<days>\d+)d")


def feature_label(column: str) -> str:
    """A column's short name for charts: ``count_songs_7d`` -> "songs, last 7 days"."""
    if column in _LABELS:
        return _LABELS[column]
    measure, days = column, None
    if window := _WINDOW.fullmatch(column):
        measure, days = window["measure"], window["days"]
    measure = _NOUNS.get(measure, measure.removeprefix("count_").replace("_", " "))
    return f"{measure}, last {days} days" if days else measure


def drivers(
    booster: xgboost.Booster,
    inputs: pd.DataFrame,
    best_iteration: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Contributions per mart column (rows x columns) and the column names.

    ``inputs`` holds the model's input columns in the model's order. The
    last column of XGBoost's output, the bias, is dropped.
    """
    matrix = xgboost.DMatrix(inputs.to_numpy(dtype=float), missing=np.nan)
    end = 0 if best_iteration is None else best_iteration + 1
    contributions = booster.predict(
        matrix, pred_contribs=True, iteration_range=(0, end)
    )[:, :-1]
    columns = list(dict.fromkeys(source_column(name) for name in inputs.columns))
    position = {column: i for i, column in enumerate(columns)}
    grouped = np.zeros((len(inputs), len(columns)))
    for j, name in enumerate(inputs.columns):
        grouped[:, position[source_column(name)]] += contributions[:, j]
    return grouped, columns


def top_drivers(
    contributions: np.ndarray,
    columns: list[str],
    raw: pd.DataFrame,
    count: int = DRIVERS,
) -> list[list[Driver]]:
    """For each row, up to ``count`` columns that raise its risk most, said.

    Only positive contributions count: a customer whose every feature lowers
    the risk has no drivers.
    """
    records = raw.to_dict("records")
    found = []
    for i, row in enumerate(records):
        order = np.argsort(-contributions[i], kind="stable")[:count]
        found.append(
            [
                Driver(
                    columns[j], float(contributions[i, j]), describe(columns[j], row)
                )
                for j in order
                if contributions[i, j] > 0
            ]
        )
    return found


def feature_importance(
    booster: xgboost.Booster, features: list[str]
) -> list[tuple[str, float]]:
    """Each mart column's share of the trees' total gain, largest first.

    ``features`` are the model's input columns in the model's order; a
    booster without feature names calls them ``f0``, ``f1``, ... The
    indicators of a text column count for their column. Columns no tree
    splits on are left out.
    """
    gains = booster.get_score(importance_type="total_gain")
    by_column: dict[str, float] = {}
    for key, gain in gains.items():
        name = features[int(key[1:])] if key not in features else key
        column = source_column(name)
        by_column[column] = by_column.get(column, 0.0) + float(gain)
    total = sum(by_column.values())
    if total <= 0:
        return []
    return sorted(
        ((column, gain / total) for column, gain in by_column.items()),
        key=lambda item: (-item[1], item[0]),
    )
