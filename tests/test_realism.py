"""Tests for the realism report: figures by hand, bad input, real and generated logs."""

from __future__ import annotations

import gzip
import json
import math
import statistics
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sparkify.generate import generate
from sparkify.realism import (
    GAP_QUANTILES,
    PAGES,
    Figure,
    RealismError,
    RealismReport,
    compare,
    profile_logs,
)
from tests.shared_data import EVENTSIM_SMALL, shared_data

FIGURE_NAMES = [f"page share: {page}" for page in PAGES] + [
    "events per session (mean)",
    "events per session (median)",
    "sessions per user per week",
    "paid event share",
    "empty userId share",
    "churn rate",
    *(f"gap p{percent} (s)" for percent in GAP_QUANTILES),
]
WEEK_SECONDS = 7 * 86_400
T0 = 1_538_352_000_000  # 2018-10-01 00:00 UTC, epoch milliseconds


def event(
    seconds: int, session_id: int, page: str, user_id: str = "1", **fields: Any
) -> dict[str, Any]:
    """A Sparkify event ``seconds`` after T0, free and logged in unless told."""
    return {
        "ts": T0 + seconds * 1_000,
        "userId": user_id,
        "sessionId": session_id,
        "page": page,
        "level": "free",
        **fields,
    }


def write_log(path: Path, events: list[dict[str, Any]]) -> Path:
    """``events`` as JSON lines (gzip if the name ends in .gz), raw UTF-8."""
    text = "\n".join(json.dumps(item, ensure_ascii=False) for item in events) + "\n"
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return path


# Three sessions in time order: user 1 listens (paid), user 2 cancels, a guest
# looks at Home. Session gaps: 10 s and 30 s; 20 s and 1 s; none.
TINY_LOG = [
    event(0, 10, "Home", level="paid"),
    event(5, 11, "NextSong", user_id="2", song="Line\u0085Break"),
    event(10, 10, "NextSong", level="paid"),
    event(25, 11, "Cancel", user_id="2"),
    event(26, 11, "Cancellation Confirmation", user_id="2"),
    event(30, 12, "Home", user_id=""),
    event(40, 10, "NextSong", level="paid"),
]


@pytest.fixture(scope="module")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log at eventsim_small's settings: 61 days from 2018-10-01, 200 users."""
    out = tmp_path_factory.mktemp("realism") / "generated.jsonl.gz"
    generate(out, users=200, days=61, start=date(2018, 10, 1), seed=1, churn_rate=0.15)
    return out


def test_profile_figures_match_a_hand_count(tmp_path: Path) -> None:
    profile = profile_logs(write_log(tmp_path / "tiny.jsonl", TINY_LOG))
    figures = profile.figures()

    assert profile.events == 7
    assert profile.sessions == 3
    assert figures["page share: Home"] == pytest.approx(2 / 7, rel=1e-12)
    assert figures["page share: NextSong"] == pytest.approx(3 / 7, rel=1e-12)
    assert figures["page share: Cancel"] == pytest.approx(1 / 7, rel=1e-12)
    assert figures["page share: Cancellation Confirmation"] == pytest.approx(
        1 / 7, rel=1e-12
    )
    assert figures["page share: Thumbs Up"] == 0
    assert figures["events per session (mean)"] == pytest.approx(7 / 3, rel=1e-12)
    assert figures["events per session (median)"] == 3
    # Two (user, session) pairs, two users, over 40 seconds.
    assert figures["sessions per user per week"] == pytest.approx(
        WEEK_SECONDS / 40, rel=1e-12
    )
    assert figures["paid event share"] == pytest.approx(3 / 7, rel=1e-12)
    assert figures["empty userId share"] == pytest.approx(1 / 7, rel=1e-12)
    assert figures["churn rate"] == 0.5
    # Gaps 1, 10, 20, 30 s, interpolated between order statistics.
    gaps = [figures[f"gap p{percent} (s)"] for percent in GAP_QUANTILES]
    assert gaps == pytest.approx([3.7, 7.75, 15.0, 22.5, 27.0], rel=1e-12)
    cuts = statistics.quantiles([1, 10, 20, 30], n=100, method="inclusive")
    assert gaps == pytest.approx([cuts[p - 1] for p in GAP_QUANTILES], rel=1e-12)


def test_profile_reads_gzip_and_splits_lines_on_newline_only(tmp_path: Path) -> None:
    profile = profile_logs(write_log(tmp_path / "tiny.jsonl.gz", TINY_LOG))

    assert profile.events == 7
    assert profile.page_counts["NextSong"] == 3


def test_profile_names_file_and_line_of_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    lines = [json.dumps(item) for item in TINY_LOG[:2]] + ['{"ts": 1, "page": ']
    path.write_text("\n".join(lines))

    with pytest.raises(RealismError, match=r"broken\.jsonl, line 3: not JSON"):
        profile_logs(path)


def test_profile_names_line_of_an_event_without_a_session(tmp_path: Path) -> None:
    path = tmp_path / "no_session.jsonl"
    path.write_text(json.dumps(TINY_LOG[0]) + "\n" + '{"ts": 1, "page": "Home"}')

    with pytest.raises(RealismError, match=r"no_session\.jsonl, line 2: not a"):
        profile_logs(path)


def test_profile_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RealismError, match=r"path: '.*missing\.jsonl' is not a file"):
        profile_logs(tmp_path / "missing.jsonl")


def test_profile_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")

    with pytest.raises(RealismError, match="holds no events"):
        profile_logs(path)


def test_profile_refuses_a_session_that_goes_back_in_time(tmp_path: Path) -> None:
    path = write_log(tmp_path / "unsorted.jsonl", [TINY_LOG[2], TINY_LOG[0]])

    with pytest.raises(RealismError, match=r"line 2: session 10 goes back in time"):
        profile_logs(path)


def test_compare_refuses_a_negative_tolerance(tmp_path: Path) -> None:
    path = write_log(tmp_path / "tiny.jsonl", TINY_LOG)

    with pytest.raises(RealismError, match=r"tolerance must be .* got -0\.1"):
        compare(path, path, tolerance=-0.1)


def test_compare_forgives_rare_pages_within_five_hundredths_of_a_point(
    tmp_path: Path,
) -> None:
    songs = [event(second, 1, "NextSong") for second in range(2_000)]
    real = write_log(
        tmp_path / "real.jsonl", songs + [event(2_000, 1, "Submit Registration")]
    )
    generated = write_log(
        tmp_path / "generated.jsonl", songs + [event(2_000, 1, "Jukebox")]
    )

    figures = {figure.name: figure for figure in compare(generated, real).figures}

    rare = figures["page share: Submit Registration"]
    assert (rare.generated, rare.relative_difference, rare.ok) == (0.0, 1.0, True)
    extra = figures["page share: Jukebox"]
    assert (extra.real, extra.relative_difference, extra.ok) == (0.0, None, True)
    absent = figures["page share: Thumbs Up"]
    assert (absent.relative_difference, absent.ok) == (0.0, True)
    assert list(figures)[: len(PAGES)] == [f"page share: {page}" for page in PAGES]


def test_compare_flags_figures_outside_the_tolerance(tmp_path: Path) -> None:
    real = write_log(tmp_path / "real.jsonl", TINY_LOG)
    generated = write_log(
        tmp_path / "generated.jsonl", [item | {"level": "paid"} for item in TINY_LOG]
    )

    report = compare(generated, real, tolerance=0.5)

    paid = next(f for f in report.figures if f.name == "paid event share")
    assert paid == Figure("paid event share", 1.0, 3 / 7, pytest.approx(4 / 3), False)
    assert not report.ok
    assert report.to_text().splitlines()[-1] == (
        f"{len(FIGURE_NAMES) - 1} of {len(FIGURE_NAMES)} figures within 50%"
    )


def test_compare_real_file_with_itself_is_all_ok() -> None:
    real = shared_data(EVENTSIM_SMALL)

    report = compare(real, real)

    assert [figure.name for figure in report.figures] == FIGURE_NAMES
    assert all(figure.relative_difference == 0 for figure in report.figures)
    assert report.ok
    assert report.to_text().endswith(
        f"{len(FIGURE_NAMES)} of {len(FIGURE_NAMES)} figures within 20%"
    )


def test_compare_generated_log_reports_every_figure(generated_log: Path) -> None:
    real = shared_data(EVENTSIM_SMALL)

    report = compare(generated_log, real)

    assert isinstance(report, RealismReport)
    assert (report.generated, report.real, report.tolerance) == (
        generated_log,
        real,
        0.2,
    )
    assert [figure.name for figure in report.figures] == FIGURE_NAMES
    for figure in report.figures:
        assert math.isfinite(figure.generated), figure
        assert math.isfinite(figure.real), figure
        assert figure.relative_difference is not None, figure
        assert math.isfinite(figure.relative_difference), figure
    text = report.to_text()
    assert str(generated_log) in text.splitlines()[0]
    assert str(real) in text.splitlines()[0]
    for name in FIGURE_NAMES:
        assert name in text
    assert text.splitlines()[-1].endswith("figures within 20%")


def test_generated_log_sits_within_20_percent_of_eventsim_small(
    generated_log: Path,
) -> None:
    report = compare(generated_log, shared_data(EVENTSIM_SMALL))

    off = [figure for figure in report.figures if not figure.ok]
    assert report.ok, "\n".join(map(str, off))


def test_compare_generated_log_with_itself_needs_no_real_file(
    generated_log: Path,
) -> None:
    report = compare(generated_log, generated_log)

    assert report.ok
    assert all(math.isfinite(figure.generated) for figure in report.figures)
