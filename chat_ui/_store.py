"""Reads of the serving database for the app; user text only as bound parameters."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from sparkify.serving import (
    CHURN_SCORES,
    CUSTOMERS,
    DAILY_ACTIVITY,
    METADATA,
    QUALITY_RESULTS,
    name_key,
)

__all__ = [
    "NoDatabase",
    "Snapshot",
    "PEER_MEASURES",
    "at_risk",
    "cached",
    "check_url",
    "churn_rates",
    "connect",
    "count_cancelled",
    "customers_by_id",
    "customers_by_name",
    "daily_activity",
    "example_ids",
    "facts",
    "quality",
    "safe_url",
    "snapshot",
]

_REQUIRED = {CUSTOMERS.name, CHURN_SCORES.name, METADATA.name}
_CUSTOMER = sa.select(
    CUSTOMERS,
    *[
        column
        for column in CHURN_SCORES.columns
        if column.name not in ("customer_id", "scored_at")
    ],
).select_from(
    CUSTOMERS.outerjoin(
        CHURN_SCORES, CHURN_SCORES.c.customer_id == CUSTOMERS.c.customer_id
    )
)
# What a customer is compared with their peers on.
PEER_MEASURES = {
    "sessions_28d": "Sessions, last 28 days",
    "songs_28d": "Songs played, last 28 days",
    "listening_minutes_28d": "Listening minutes, last 28 days",
    "thumbs_up_28d": "Thumbs up, last 28 days",
    "thumbs_down_28d": "Thumbs down, last 28 days",
    "adverts_28d": "Adverts played, last 28 days",
    "errors_28d": "Errors, last 28 days",
    "tenure_days": "Tenure in days",
}


class NoDatabase(Exception):
    """No serving database the app can read is published at this URL.

    Its text is the sentence to show: none yet, or one an older version of
    the project published.
    """

    def __init__(
        self,
        message: str = "There is no serving database yet, so there are no "
        "customers to show. Run `sparkify run` first.",
    ) -> None:
        super().__init__(message)


_OUTDATED = (
    "The serving database was published by an older version of this project "
    "and lacks columns the app needs. Run `sparkify run` again to republish it."
)


def _check_tables(connection: sa.Connection) -> None:
    """Raise ``NoDatabase`` unless the app's tables and columns are there."""
    inspector = sa.inspect(connection)
    if not _REQUIRED <= set(inspector.get_table_names()):
        raise NoDatabase
    columns = {column["name"] for column in inspector.get_columns(CUSTOMERS.name)}
    if not {column.name for column in CUSTOMERS.columns} <= columns:
        raise NoDatabase(_OUTDATED)


def check_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` parses as a SQLAlchemy URL."""
    try:
        sa.make_url(url)
    except (sa.exc.ArgumentError, TypeError, AttributeError) as error:
        raise ValueError(
            "url must be a SQLAlchemy URL such as 'sqlite:///work/serving.db', "
            f"got {url!r}"
        ) from error


def safe_url(url: str) -> str:
    """``url`` with any password hidden, for messages and logs."""
    return sa.make_url(url).render_as_string(hide_password=True)


@dataclass
class _Pool:
    """A pooled engine on one SQLite file (identified by device and inode)."""

    identity: tuple[int, int]
    engine: sa.Engine
    has_tables: bool = False


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=16)
def _server_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or database in (None, "", ":memory:")
        or parsed.query.get("uri")
    ):
        return None
    return Path(database)


def _file_pool(url: str, path: Path) -> _Pool:
    """The pool on the file at ``path`` now, new when publish() replaced it.

    publish() moves a new database over the old file with os.replace, so a
    new inode means a new database: its pool replaces the old one, whose
    idle connections are closed (connections in use finish on the old file).
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        # Connecting would create an empty file in its place.
        raise NoDatabase from None
    identity = (stat.st_dev, stat.st_ino)
    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is None or pool.identity != identity:
            if pool is not None:
                pool.engine.dispose()
            pool = _POOLS[url] = _Pool(
                identity, sa.create_engine(url, pool_size=8, max_overflow=32)
            )
        return pool


@contextlib.contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """A connection to the published serving database; ``NoDatabase`` if none."""
    path = _sqlite_file(url)
    if path is None:
        with _server_engine(url).connect() as connection:
            _check_tables(connection)
            yield connection
        return

    pool = _file_pool(url, path)
    with pool.engine.connect() as connection:
        if not pool.has_tables:
            # A published file keeps its tables; check each file once.
            _check_tables(connection)
            pool.has_tables = True
        yield connection


def facts(connection: sa.Connection) -> dict[str, str]:
    """The ``metadata`` table as a dict."""
    rows = connection.execute(sa.select(METADATA.c.key, METADATA.c.value))
    return {key: value for key, value in rows}


def customers_by_id(
    connection: sa.Connection, ids: Sequence[str]
) -> dict[str, Mapping[str, Any]]:
    """The known customers among ``ids``, with their scores, by ID."""
    if not ids:
        return {}
    query = _CUSTOMER.where(CUSTOMERS.c.customer_id.in_(list(ids)))
    return {row.customer_id: row._mapping for row in connection.execute(query)}


def customers_by_name(
    connection: sa.Connection, words: Sequence[str], limit: int
) -> tuple[list[Mapping[str, Any]], int]:
    """Customers whose first and last name, or either, match ``words``.

    Neighbouring words are tried as a first name and a last name ("Lauren
    De Angelis": Lauren + De Angelis, Lauren De + Angelis); a single word,
    only when just one is given, as either. Case and accents are ignored
    (``sparkify.serving.name_key``). Returns up to ``limit`` customers and
    how many matched.
    """
    lowered = [name_key(word) for word in words]
    first = CUSTOMERS.c.first_name_key
    last = CUSTOMERS.c.last_name_key
    splits = {
        (" ".join(lowered[start:cut]), " ".join(lowered[cut:end]))
        for start in range(len(lowered))
        for end in range(start + 2, min(start + 4, len(lowered)) + 1)
        for cut in range(start + 1, end)
    }
    if len(lowered) == 1:
        conditions = [sa.or_(first == lowered[0], last == lowered[0])]
    else:
        conditions = [sa.and_(first == a, last == b) for a, b in sorted(splits)]
    if conditions:
        where = sa.or_(*conditions)
        total = connection.execute(
            sa.select(sa.func.count()).select_from(CUSTOMERS).where(where)
        ).scalar_one()
        if total:
            query = (
                _CUSTOMER.where(where)
                .order_by(
                    CUSTOMERS.c.is_cancelled,
                    CHURN_SCORES.c.churn_probability.desc(),
                    CUSTOMERS.c.customer_id,
                )
                .limit(limit)
            )
            return [row._mapping for row in connection.execute(query)], total
    return [], 0


def at_risk(
    connection: sa.Connection,
    *,
    limit: int | None,
    level: str | None = None,
    state: str | None = None,
    band: str | None = None,
    min_probability: float = 0.0,
) -> tuple[pd.DataFrame, int]:
    """Scored active customers by churn risk, highest first, and how many match."""
    conditions = [CUSTOMERS.c.is_cancelled.is_(False)]
    if min_probability > 0:
        # Only when it filters: a range over the index covering every score
        # would make SQLite read all of them through it.
        conditions.append(CHURN_SCORES.c.churn_probability >= min_probability)
    if level:
        conditions.append(CUSTOMERS.c.level == level)
    if state:
        conditions.append(CUSTOMERS.c.state == state)
    if band:
        conditions.append(CHURN_SCORES.c.risk_band == band)
    joined = CHURN_SCORES.join(
        CUSTOMERS, CUSTOMERS.c.customer_id == CHURN_SCORES.c.customer_id
    )
    total = connection.execute(
        sa.select(sa.func.count()).select_from(joined).where(*conditions)
    ).scalar_one()
    query = (
        sa.select(
            CUSTOMERS.c.customer_id,
            CUSTOMERS.c.first_name,
            CUSTOMERS.c.last_name,
            CUSTOMERS.c.level,
            CUSTOMERS.c.state,
            CUSTOMERS.c.last_active_at,
            CHURN_SCORES.c.churn_probability,
            CHURN_SCORES.c.risk_band,
            CHURN_SCORES.c.reason_1,
            CHURN_SCORES.c.action,
        )
        .select_from(joined)
        .where(*conditions)
        .order_by(CHURN_SCORES.c.churn_probability.desc(), CHURN_SCORES.c.customer_id)
    )
    if limit is not None:
        query = query.limit(limit)
    return pd.read_sql(query, connection), int(total)


def count_cancelled(connection: sa.Connection, start: str, end: str) -> int:
    """Customers who cancelled on a day from ``start`` up to, not incl., ``end``."""
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(CUSTOMERS)
        .where(CUSTOMERS.c.cancelled_at >= start, CUSTOMERS.c.cancelled_at < end)
    ).scalar_one()


def daily_activity(connection: sa.Connection, customer_id: str) -> pd.DataFrame:
    """The customer's active days in ``daily_activity``, oldest first."""
    if not sa.inspect(connection).has_table(DAILY_ACTIVITY.name):
        return pd.DataFrame(columns=[c.name for c in DAILY_ACTIVITY.columns])
    query = (
        sa.select(DAILY_ACTIVITY)
        .where(DAILY_ACTIVITY.c.customer_id == customer_id)
        .order_by(DAILY_ACTIVITY.c.activity_date)
    )
    return pd.read_sql(query, connection)


def quality(connection: sa.Connection) -> pd.DataFrame:
    """The latest run's ``quality_results`` (empty when there are none)."""
    if not sa.inspect(connection).has_table(QUALITY_RESULTS.name):
        return pd.DataFrame(columns=[c.name for c in QUALITY_RESULTS.columns])
    return pd.read_sql(sa.select(QUALITY_RESULTS), connection)


def example_ids(connection: sa.Connection, count: int = 3) -> list[str]:
    """Scored active customers in ID order, else any customers in ID order.

    Read along the primary keys and stopped at ``count``: it must not scan a
    million customers for every help reply.
    """
    scored = (
        sa.select(CHURN_SCORES.c.customer_id)
        .select_from(
            CHURN_SCORES.join(
                CUSTOMERS, CUSTOMERS.c.customer_id == CHURN_SCORES.c.customer_id
            )
        )
        .where(CUSTOMERS.c.is_cancelled.is_(False))
        .order_by(CHURN_SCORES.c.customer_id)
        .limit(count)
    )
    ids = list(connection.execute(scored).scalars())
    if len(ids) < count:
        rest = (
            sa.select(CUSTOMERS.c.customer_id)
            .where(CUSTOMERS.c.customer_id.not_in(ids))
            .order_by(CUSTOMERS.c.is_cancelled, CUSTOMERS.c.customer_id)
            .limit(count - len(ids))
        )
        ids += list(connection.execute(rest).scalars())
    return ids


@dataclass(frozen=True)
class Snapshot:
    """Whole-database aggregates, computed once per published database.

    ``levels`` maps each level to ``(customers, cancelled, active)``;
    ``peer_sums`` each level to the sums of ``PEER_MEASURES`` over its
    active customers and their count; ``probabilities`` each level to the
    sorted churn probabilities of its scored active customers.
    """

    first_event_at: str | None
    states: frozenset[str]
    levels: Mapping[str, tuple[int, int, int]]
    peer_sums: Mapping[str, tuple[Mapping[str, float], int]]
    probabilities: Mapping[str, np.ndarray]
    top_state: str | None
    example_name: str | None

    def percentile(
        self, level: str, probability: float, is_member: bool
    ) -> tuple[float, int]:
        """Share of the level's other scored customers below ``probability``.

        ``is_member``: the customer is one of them, and is not counted.
        """
        values = self.probabilities.get(level, np.array([]))
        others = len(values) - (1 if is_member else 0)
        if others <= 0:
            return 0.0, 0
        below = int(np.searchsorted(values, probability, side="left"))
        return below / others, others


_CACHE: dict[tuple[str, str], dict[object, Any]] = {}
_CACHE_LOCK = threading.Lock()


def cached(url: str, built_at: str, key: object, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per published database (``built_at``) and ``key``.

    A database is replaced whole by every run, so what was computed from it
    holds until ``built_at`` changes; the old entries are dropped then.
    """
    with _CACHE_LOCK:
        for old in [k for k in _CACHE if k[0] == url and k[1] != built_at]:
            del _CACHE[old]
        entries = _CACHE.setdefault((url, built_at), {})
        if key not in entries:
            entries[key] = compute()
        return entries[key]


def snapshot(url: str, connection: sa.Connection, built_at: str) -> Snapshot:
    """The aggregates of the database published at ``built_at``, cached."""
    return cached(url, built_at, "snapshot", lambda: _compute_snapshot(connection))


_DIMENSIONS = {"level": CUSTOMERS.c.level, "state": CUSTOMERS.c.state}
_DIMENSIONS["gender"] = CUSTOMERS.c.gender


def churn_rates(
    url: str,
    connection: sa.Connection,
    facts: Mapping[str, str],
    dimension: str | None,
) -> list[dict[str, Any]]:
    """Customers, cancellations, churn rate and mean predicted risk per group.

    ``dimension`` is ``level``, ``state``, ``gender`` or None for one row
    over everyone (``group`` None). Groups are in descending order of
    customers.
    """
    if dimension is not None and dimension not in _DIMENSIONS:
        raise ValueError(
            f"dimension must be one of {sorted(_DIMENSIONS)} or None, got {dimension!r}"
        )

    def compute() -> list[dict[str, Any]]:
        group = _DIMENSIONS[dimension] if dimension else sa.literal(None)
        active = sa.case((CUSTOMERS.c.is_cancelled, None), else_=1)
        query = (
            sa.select(
                group.label("group"),
                sa.func.count().label("customers"),
                sa.func.sum(sa.case((CUSTOMERS.c.is_cancelled, 1), else_=0)).label(
                    "cancelled"
                ),
                sa.func.avg(active * CHURN_SCORES.c.churn_probability).label(
                    "predicted"
                ),
            )
            .select_from(
                CUSTOMERS.outerjoin(
                    CHURN_SCORES,
                    CHURN_SCORES.c.customer_id == CUSTOMERS.c.customer_id,
                )
            )
            .group_by(group)
            .order_by(sa.func.count().desc(), group)
        )
        rows = []
        for row in connection.execute(query):
            record = dict(row._mapping)
            record["cancelled"] = int(record["cancelled"] or 0)
            record["rate"] = record["cancelled"] / record["customers"]
            rows.append(record)
        return rows

    return cached(url, facts.get("built_at", ""), ("churn_rates", dimension), compute)


def _compute_snapshot(connection: sa.Connection) -> Snapshot:
    first = connection.execute(sa.select(sa.func.min(CUSTOMERS.c.first_event_at)))
    states = connection.execute(
        sa.select(CUSTOMERS.c.state).where(CUSTOMERS.c.state.is_not(None)).distinct()
    ).scalars()

    cancelled = sa.func.sum(sa.case((CUSTOMERS.c.is_cancelled, 1), else_=0))
    levels = {}
    for row in connection.execute(
        sa.select(
            CUSTOMERS.c.level,
            sa.func.count().label("customers"),
            cancelled.label("cancelled"),
        ).group_by(CUSTOMERS.c.level)
    ):
        total, gone = int(row.customers), int(row.cancelled or 0)
        levels[row.level] = (total, gone, total - gone)

    active = CUSTOMERS.c.is_cancelled.is_(False)
    peer_sums = {
        row.level: (
            {measure: float(row._mapping[measure] or 0) for measure in PEER_MEASURES},
            int(row.customers),
        )
        for row in connection.execute(
            sa.select(
                CUSTOMERS.c.level,
                sa.func.count().label("customers"),
                *[
                    sa.func.sum(CUSTOMERS.c[measure]).label(measure)
                    for measure in PEER_MEASURES
                ],
            )
            .where(active)
            .group_by(CUSTOMERS.c.level)
        )
    }

    scored = pd.read_sql(
        sa.select(
            CUSTOMERS.c.level, CUSTOMERS.c.state, CHURN_SCORES.c.churn_probability
        )
        .select_from(
            CHURN_SCORES.join(
                CUSTOMERS, CUSTOMERS.c.customer_id == CHURN_SCORES.c.customer_id
            )
        )
        .where(active),
        connection,
    )
    probabilities = {
        str(level): np.sort(group["churn_probability"].to_numpy(dtype=float))
        for level, group in scored.groupby("level")
    }
    top_state = (
        str(scored["state"].value_counts().idxmax())
        if scored["state"].notna().any()
        else None
    )
    name = connection.execute(
        sa.select(CUSTOMERS.c.first_name, CUSTOMERS.c.last_name)
        .where(CUSTOMERS.c.first_name.is_not(None), CUSTOMERS.c.last_name.is_not(None))
        .order_by(CUSTOMERS.c.is_cancelled, CUSTOMERS.c.customer_id)
        .limit(1)
    ).first()
    return Snapshot(
        first_event_at=first.scalar_one(),
        states=frozenset(states),
        levels=levels,
        peer_sums=peer_sums,
        probabilities=probabilities,
        top_state=top_state,
        example_name=f"{name.first_name} {name.last_name}" if name else None,
    )
