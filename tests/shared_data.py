"""The real Sparkify logs in ../shared/data, beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EVENTSIM_SMALL = SHARED_DATA / "eventsim_small.jsonl.gz"
UDACITY = SHARED_DATA / "udacity_log_data_2018-11.jsonl.gz"


def shared_data(path: Path) -> Path:
    """``path``, or a skip where this checkout has no ../shared/data."""
    if not path.exists():
        pytest.skip(f"{path} is not here (it ships beside the repo, not in it)")
    return path
