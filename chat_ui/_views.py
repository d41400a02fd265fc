"""What the Customer, Overview, Data quality and Model tabs show: plain functions.

Each returns Markdown, Plotly figures and tables built from the serving
database only; the app module wires them to components.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import sqlalchemy as sa

from chat_ui import _store as store
from chat_ui._chat import chat
from chat_ui._format import HIDDEN_NAME, count, escape, percent
from sparkify.serving import ACTIVITY_DAYS, RISK_BANDS

__all__ = [
    "AT_RISK_SHOWN",
    "CustomerView",
    "ModelView",
    "Overview",
    "QualityView",
    "at_risk_csv",
    "customer_view",
    "model_view",
    "overview",
    "quality_view",
]

AT_RISK_SHOWN = 500
_BAND_COLOURS = {"high": "#d62728", "medium": "#ff7f0e", "low": "#2ca02c"}
_LAYOUT = {
    "template": "plotly_white",
    "height": 300,
    "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
}
_AT_RISK_COLUMNS = {
    "customer_id": "customer",
    "name": "name",
    "level": "level",
    "state": "state",
    "churn_probability": "churn risk",
    "risk_band": "band",
    "last_active": "last active",
    "reason_1": "top reason",
    "action": "suggested action",
}


@dataclass
class CustomerView:
    """The Customer tab for one ID: the card and four figures (None: nothing)."""

    card: str
    listening: go.Figure | None = None
    thumbs: go.Figure | None = None
    gauge: go.Figure | None = None
    reasons: go.Figure | None = None


def customer_view(url: str, customer_id: str, *, masked: bool = False) -> CustomerView:
    """The Customer tab for ``customer_id`` (the chat's card, then the plots)."""
    customer_id = (customer_id or "").strip()
    if not customer_id:
        return CustomerView("Type a customer ID and press Enter.")
    if len(customer_id) > 64 or not customer_id.isalnum():
        return CustomerView(
            "A customer ID is a short run of letters and digits, such as `1042`; "
            f"{escape(customer_id[:64])!s} is not one."
        )

    reply = chat(customer_id, url, masked=masked)
    if reply.kind != "card" or reply.conversation.customer_id != customer_id:
        return CustomerView(reply.text)
    try:
        with store.connect(url) as connection:
            facts = store.facts(connection)
            customer = store.customers_by_id(connection, [customer_id])[customer_id]
            daily = store.daily_activity(connection, customer_id)
    except (store.NoDatabase, sa.exc.DBAPIError, KeyError):
        return CustomerView(reply.text)

    days = _days_before(facts.get("as_of"))
    listening, thumbs = (None, None)
    if days is not None:
        filled = _fill_days(daily, days)
        listening = _listening_figure(filled)
        thumbs = _thumbs_figure(filled)
    scored = not customer["is_cancelled"] and customer["churn_probability"] is not None
    return CustomerView(
        card=reply.text,
        listening=listening,
        thumbs=thumbs,
        gauge=_gauge(customer["churn_probability"]) if scored else None,
        reasons=_reasons_figure(customer) if scored else None,
    )


def _days_before(as_of: str | None) -> pd.DatetimeIndex | None:
    try:
        end = dt.date.fromisoformat(as_of or "")
    except ValueError:
        return None
    return pd.date_range(end=end - dt.timedelta(days=1), periods=ACTIVITY_DAYS)


def _fill_days(daily: pd.DataFrame, days: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per day of ``days``; a day without activity has zeros."""
    frame = daily.assign(activity_date=pd.to_datetime(daily["activity_date"]))
    frame = frame.set_index("activity_date").drop(columns="customer_id")
    return frame.reindex(days, fill_value=0).rename_axis("activity_date").reset_index()


def _listening_figure(daily: pd.DataFrame) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=daily["activity_date"],
            y=daily["listening_minutes"],
            name="minutes",
            marker_color="#1f77b4",
            hovertemplate="%{x|%a %d %b}: %{y:.0f} min<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"Listening per day, last {ACTIVITY_DAYS} days (minutes)", **_LAYOUT
    )
    return figure


def _thumbs_figure(daily: pd.DataFrame) -> go.Figure:
    figure = go.Figure(
        [
            go.Bar(
                x=daily["activity_date"],
                y=daily["thumbs_up"],
                name="thumbs up",
                marker_color="#2ca02c",
            ),
            go.Bar(
                x=daily["activity_date"],
                y=-daily["thumbs_down"],
                name="thumbs down",
                marker_color="#d62728",
                customdata=daily["thumbs_down"],
                hovertemplate="%{x|%a %d %b}: %{customdata} down<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        title="Thumbs up and down per day (down drawn below zero)",
        barmode="relative",
        legend={"orientation": "h", "y": -0.2},
        **_LAYOUT,
    )
    return figure


def _gauge(probability: float) -> go.Figure:
    steps, upper = [], 100.0
    for band, floor in RISK_BANDS:
        steps.append(
            {"range": [floor * 100, upper], "color": _BAND_COLOURS[band] + "55"}
        )
        upper = floor * 100
    figure = go.Figure(
        go.Indicator(
            mode="gauge+number",
            value=round(probability * 100, 1),
            number={"suffix": "%"},
            gauge={
                "axis": {"range": [0, 100]},
                "bar": {"color": "#333333"},
                "steps": steps,
            },
            title={"text": "Churn risk"},
        )
    )
    figure.update_layout(**{**_LAYOUT, "margin": {"l": 30, "r": 30, "t": 60, "b": 10}})
    return figure


def _reasons_figure(customer: dict) -> go.Figure | None:
    reasons = [
        (customer[f"reason_{i}"], customer[f"reason_{i}_log_odds"])
        for i in (1, 2, 3)
        if customer[f"reason_{i}"] and customer[f"reason_{i}_log_odds"] is not None
    ]
    if not reasons:
        return None
    sentences, weights = zip(*reversed(reasons), strict=True)
    figure = go.Figure(
        go.Bar(
            x=list(weights),
            y=[_wrap(sentence) for sentence in sentences],
            orientation="h",
            marker_color="#d62728",
            hovertemplate="+%{x:.2f} log-odds<extra></extra>",
        )
    )
    figure.update_layout(
        title="What raises the risk most (push on the score, log-odds)",
        xaxis_title="log-odds added to the score",
        **{**_LAYOUT, "margin": {"l": 260, "r": 20, "t": 50, "b": 40}},
    )
    return figure


def _wrap(sentence: str, width: int = 40) -> str:
    lines, line = [], ""
    for word in sentence.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join([*lines, line])


@dataclass
class Overview:
    """The Overview tab: headline figures, charts and the at-risk table."""

    headline: str
    cancellations: go.Figure | None = None
    distribution: go.Figure | None = None
    by_level: go.Figure | None = None
    by_state: go.Figure | None = None
    at_risk: pd.DataFrame = field(default_factory=pd.DataFrame)
    at_risk_total: int = 0
    levels: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)


def overview(
    url: str,
    *,
    level: str | None = None,
    state: str | None = None,
    band: str | None = None,
    min_probability: float = 0.0,
    masked: bool = False,
) -> Overview:
    """The Overview tab; the filters apply to the at-risk table and its CSV."""
    if band is not None and band not in dict(RISK_BANDS):
        raise ValueError(f"band must be one of {list(dict(RISK_BANDS))}, got {band!r}")
    if not 0.0 <= min_probability <= 1.0:
        raise ValueError(f"min_probability must lie in [0, 1], got {min_probability!r}")
    try:
        with store.connect(url) as connection:
            facts = store.facts(connection)
            built_at = facts.get("built_at", "")
            snapshot = store.snapshot(url, connection, built_at)
            cancelled = store.cached(
                url, built_at, "cancelled_at", lambda: _cancelled_at(connection)
            )
            by_level = store.churn_rates(url, connection, facts, "level")
            by_state = store.churn_rates(url, connection, facts, "state")
            table, total = store.at_risk(
                connection,
                limit=AT_RISK_SHOWN,
                level=level or None,
                state=state or None,
                band=band or None,
                min_probability=min_probability,
            )
    except store.NoDatabase as missing:
        return Overview(str(missing))

    as_of = facts.get("as_of", "")
    probabilities = (
        np.concatenate(list(snapshot.probabilities.values()))
        if snapshot.probabilities
        else np.array([])
    )
    shown = _at_risk_frame(table, masked)
    return Overview(
        headline=_headline(facts, snapshot, cancelled, probabilities),
        cancellations=_cancellations_figure(cancelled, as_of),
        distribution=_distribution_figure(probabilities),
        by_level=_risk_by_figure(by_level, "level"),
        by_state=_risk_by_figure(by_state, "state"),
        at_risk=shown,
        at_risk_total=total,
        levels=sorted(snapshot.levels),
        states=sorted(snapshot.states),
    )


def _cancelled_at(connection: sa.Connection) -> pd.Series:
    from sparkify.serving import CUSTOMERS

    query = sa.select(CUSTOMERS.c.cancelled_at).where(
        CUSTOMERS.c.cancelled_at.is_not(None)
    )
    values = connection.execute(query).scalars().all()
    return pd.to_datetime(pd.Series(values, dtype=object).str[:10])


def _headline(
    facts: dict[str, str],
    snapshot: store.Snapshot,
    cancelled: pd.Series,
    probabilities: np.ndarray,
) -> str:
    active = sum(a for _, _, a in snapshot.levels.values())
    paid = snapshot.levels.get("paid", (0, 0, 0))[2]
    as_of = facts.get("as_of", "")
    horizon = facts.get("horizon_days", "?")
    try:
        end = pd.Timestamp(as_of)
        last_week = int(
            ((cancelled >= end - pd.Timedelta(days=7)) & (cancelled < end)).sum()
        )
    except ValueError:
        last_week = 0
    cells = [
        ("Active customers", count(active)),
        ("Paid share", percent(paid / active) if active else "–"),
        ("Cancelled, last 7 days", count(last_week)),
        (
            f"Predicted to cancel in the next {escape(horizon)} days",
            f"{probabilities.sum():,.1f}" if len(probabilities) else "–",
        ),
        ("Scored customers", count(len(probabilities))),
    ]
    header = "| " + " | ".join(label for label, _ in cells) + " |"
    rule = "|" + "---:|" * len(cells)
    values = "| " + " | ".join(f"**{value}**" for _, value in cells) + " |"
    note = (
        f"As of {escape(as_of)}. *Predicted to cancel* is the sum of the active "
        "customers' churn probabilities: the number the model expects."
    )
    return "\n".join([header, rule, values, "", note])


def _cancellations_figure(cancelled: pd.Series, as_of: str) -> go.Figure | None:
    try:
        end = pd.Timestamp(as_of)
    except ValueError:
        return None
    # Weeks that end on the day before as_of, so the last bar is a whole week.
    weeks_back = ((end - cancelled).dt.days - 1) // 7
    starts = end - pd.to_timedelta((weeks_back + 1) * 7, unit="D")
    counts = starts.value_counts()
    first = counts.index.min() if len(counts) else end - pd.Timedelta(days=7)
    weeks = pd.date_range(first, end - pd.Timedelta(days=7), freq="7D")
    counts = counts.reindex(weeks, fill_value=0)
    figure = go.Figure(
        go.Bar(
            x=counts.index,
            y=counts.values,
            marker_color="#d62728",
            hovertemplate="week from %{x|%d %b}: %{y}<extra></extra>",
        )
    )
    figure.update_layout(title="Cancellations per week", **_LAYOUT)
    return figure


def _distribution_figure(probabilities: np.ndarray) -> go.Figure | None:
    if not len(probabilities):
        return None
    counts, edges = np.histogram(probabilities, bins=20, range=(0, 1))
    colours = [
        _BAND_COLOURS[next(b for b, floor in RISK_BANDS if edge >= floor - 1e-9)]
        for edge in edges[:-1]
    ]
    figure = go.Figure(
        go.Bar(
            x=(edges[:-1] + 0.025) * 100,
            y=counts,
            width=4.5,
            marker_color=colours,
            hovertemplate="%{x:.1f}%: %{y} customers<extra></extra>",
        )
    )
    figure.update_layout(
        title="Churn risk of the scored customers",
        xaxis_title="churn probability (%)",
        yaxis_title="customers",
        **_LAYOUT,
    )
    return figure


def _risk_by_figure(rows: list[dict], dimension: str) -> go.Figure | None:
    rows = [row for row in rows if row["predicted"] is not None and row["group"]]
    if not rows:
        return None
    rows = sorted(rows, key=lambda row: -row["predicted"])[:20]
    figure = go.Figure(
        go.Bar(
            x=[row["group"] for row in rows],
            y=[row["predicted"] * 100 for row in rows],
            customdata=[row["customers"] - row["cancelled"] for row in rows],
            marker_color="#ff7f0e",
            hovertemplate="%{x}: %{y:.1f}% of %{customdata} active<extra></extra>",
        )
    )
    top = " (the 20 highest)" if dimension == "state" else ""
    figure.update_layout(
        title=f"Mean churn risk by {dimension}{top}",
        yaxis_title="mean churn probability (%)",
        **_LAYOUT,
    )
    return figure


def _at_risk_frame(table: pd.DataFrame, masked: bool) -> pd.DataFrame:
    frame = table.copy()
    if masked:
        frame["name"] = HIDDEN_NAME
    else:
        frame["name"] = (
            frame["first_name"].fillna("") + " " + frame["last_name"].fillna("")
        ).str.strip()
    frame["churn_probability"] = (frame["churn_probability"] * 100).round(1)
    frame["last_active"] = frame["last_active_at"].str[:10]
    return (
        frame[list(_AT_RISK_COLUMNS)]
        .rename(columns=_AT_RISK_COLUMNS)
        .rename(columns={"churn risk": "churn risk (%)"})
    )


def at_risk_csv(
    url: str,
    *,
    level: str | None = None,
    state: str | None = None,
    band: str | None = None,
    min_probability: float = 0.0,
    masked: bool = False,
) -> Path | None:
    """Every scored active customer the filters match, as a CSV file.

    Files are kept per published database and filters in one folder per
    process, which holds the latest ``_CSV_KEPT`` of them; None without a
    database.
    """
    filters = (level or None, state or None, band or None, min_probability, masked)
    try:
        with store.connect(url) as connection:
            facts = store.facts(connection)
            key = hashlib.sha256(repr((url, facts.get("built_at"), filters)).encode())
            path = _CSV_DIR / f"at-risk-{facts.get('as_of') or 'latest'}-"
            path = path.with_name(path.name + key.hexdigest()[:12] + ".csv")
            if not path.exists():
                table, _ = store.at_risk(
                    connection,
                    limit=None,
                    level=filters[0],
                    state=filters[1],
                    band=filters[2],
                    min_probability=min_probability,
                )
                _CSV_DIR.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".tmp")
                _at_risk_frame(table, masked).to_csv(partial, index=False)
                partial.replace(path)
    except store.NoDatabase:
        return None
    kept = sorted(_CSV_DIR.glob("*.csv"), key=lambda p: p.stat().st_mtime)
    for old in kept[:-_CSV_KEPT]:
        old.unlink(missing_ok=True)
    path.touch()
    return path


_CSV_DIR = Path(tempfile.gettempdir()) / f"sparkify-at-risk-{os.getpid()}"
_CSV_KEPT = 16


@dataclass
class QualityView:
    """The Data quality tab: the latest validation, per suite and failures."""

    summary: str
    suites: pd.DataFrame = field(default_factory=pd.DataFrame)
    failed: pd.DataFrame = field(default_factory=pd.DataFrame)
    data_docs: Path | None = None


def quality_view(url: str) -> QualityView:
    """The latest run's validation results and where its Data Docs are."""
    try:
        with store.connect(url) as connection:
            facts = store.facts(connection)
            results = store.quality(connection)
    except store.NoDatabase as missing:
        return QualityView(str(missing))
    docs = _data_docs_path(facts.get("data_docs", ""))
    if results.empty:
        return QualityView(
            "No validation results are recorded in the serving database yet.",
            data_docs=docs,
        )

    results["success"] = results["success"].astype(bool)
    suites = (
        results.groupby(["suite", "table_name"], sort=False)
        .apply(_suite_row, include_groups=False)
        .reset_index()
        .rename(columns={"table_name": "table"})
    )
    failed = results[~results["success"]][
        [
            "severity",
            "expectation",
            "observed",
            "why",
            "suite",
            "table_name",
            "examples",
        ]
    ].rename(columns={"table_name": "table", "examples": "offending rows"})
    status = facts.get("quality_status", "unknown")
    mark = "passed" if status == "passed" else "FAILED"
    lines = [
        f"**Latest validation: {mark}** at "
        f"{escape(facts.get('quality_checked_at', '?'))} · "
        f"{count(int(results['success'].sum()))} of {count(len(results))} "
        "expectations met.",
    ]
    if facts.get("quality_summary"):
        lines.append(escape(facts["quality_summary"]))
    if status != "passed":
        lines.append(
            "A failed critical expectation stopped that run: the customers and "
            "scores shown are from the last run that passed."
        )
    return QualityView("\n\n".join(lines), suites, failed, docs)


def _suite_row(group: pd.DataFrame) -> pd.Series:
    failed = group[~group["success"]]
    return pd.Series(
        {
            "expectations": len(group),
            "passed": int(group["success"].sum()),
            "critical failed": int((failed["severity"] == "critical").sum()),
            "warnings": int((failed["severity"] == "warning").sum()),
        }
    )


def _data_docs_path(value: str) -> Path | None:
    if not value:
        return None
    path = Path(value.removeprefix("file://"))
    return path if path.is_absolute() else None


@dataclass
class ModelView:
    """The Model tab: the champion, its evaluation and its main features."""

    summary: str
    evaluation: pd.DataFrame = field(default_factory=pd.DataFrame)
    importance: go.Figure | None = None


_METRICS = {
    "rows": "customers rated",
    "positives": "churners among them",
    "base_rate": "base rate",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "threshold": "threshold",
    "precision": "precision at threshold",
    "recall": "recall at threshold",
    "f1": "F1 at threshold",
    "top_lift": "top 10% lift",
    "top_recall": "top 10% recall",
    "brier": "Brier score",
}


def model_view(url: str) -> ModelView:
    """The champion model's version, training date, figures and features."""
    try:
        with store.connect(url) as connection:
            facts = store.facts(connection)
    except store.NoDatabase as missing:
        return ModelView(str(missing))
    version = facts.get("model_version")
    if not version:
        status = facts.get("model_status", "")
        return ModelView(
            "No churn model scores these customers yet."
            + (f" {escape(status)}" if status else "")
        )

    reports = json.loads(facts.get("evaluation") or "[]")
    trained = facts.get("model_trained_at", "")[:16].replace("T", " ")
    horizon = facts.get("horizon_days", "?")
    lines = [
        f"**Champion model {escape(version)}**, trained "
        f"{escape(trained + ' UTC' if trained else 'at an unknown time')}, "
        f"predicts a cancellation within {escape(horizon)} days."
    ]
    if reports:
        against = " and compared with a logistic-regression baseline" * (
            len(reports) > 1
        )
        lines.append(
            "Rated on the customers of the cutoff "
            f"{escape(reports[0]['cutoff_date'])}, which it did not learn "
            f"from{against}:"
        )
    if facts.get("promotion_decision"):
        lines.append(f"Last decision: {escape(facts['promotion_decision'])}")
    evaluation = pd.DataFrame({"metric": list(_METRICS.values())})
    for report in reports:
        evaluation[report["model"]] = [_figure(report.get(key)) for key in _METRICS]
    importance = json.loads(facts.get("feature_importance") or "[]")
    return ModelView("\n\n".join(lines), evaluation, _importance_figure(importance))


def _figure(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):.3f}"


def _importance_figure(importance: list[list]) -> go.Figure | None:
    """Bars named by each column's short name (databases published before
    short names were stored give the column alone)."""
    if not importance:
        return None
    top = list(reversed(importance[:15]))
    figure = go.Figure(
        go.Bar(
            x=[entry[1] * 100 for entry in top],
            y=[entry[2] if len(entry) > 2 else entry[0] for entry in top],
            customdata=[entry[0] for entry in top],
            orientation="h",
            marker_color="#1f77b4",
            hovertemplate=(
                "%{y} (%{customdata}): %{x:.1f}% of the gain<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        title="Most important features (share of the trees' total gain)",
        xaxis_title="% of total gain",
        yaxis={"automargin": True},
        **{**_LAYOUT, "height": 420, "margin": {"l": 20, "r": 20, "t": 50, "b": 40}},
    )
    return figure
