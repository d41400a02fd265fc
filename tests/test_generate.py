"""Tests for the Sparkify event-log generator: schema, quirks, determinism, churn."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sparkify.generate import GenerateError, GenerateSummary, _parse_size, generate

KEY_ORDER = [
    "ts",
    "userId",
    "sessionId",
    "page",
    "auth",
    "method",
    "status",
    "level",
    "itemInSession",
    "location",
    "userAgent",
    "lastName",
    "firstName",
    "registration",
    "gender",
    "artist",
    "song",
    "length",
]
USER_FIELDS = {
    "location",
    "userAgent",
    "lastName",
    "firstName",
    "registration",
    "gender",
}
SONG_FIELDS = {"artist", "song", "length"}

# Method and status of every page in eventsim_small.jsonl.gz.
PAGES = {
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

START = date(2018, 10, 1)
DAYS = 60
DAY_MS = 86_400_000
WINDOW_START_MS = int(datetime(2018, 10, 1, tzinfo=UTC).timestamp()) * 1000
WINDOW_END_MS = WINDOW_START_MS + DAYS * DAY_MS


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    # Split on "\n" only: U+0085 inside strings is not a line break.
    return data.decode("utf-8").split("\n")


def read_truth(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["user_id"]: row for row in csv.DictReader(handle)}


def by_user(events: list[dict]) -> dict[str, list[dict]]:
    users: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if event["userId"]:
            users[event["userId"]].append(event)
    return users


@pytest.fixture(scope="module")
def default_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[GenerateSummary, list[dict]]:
    """The default configuration: 300 users over 60 days."""
    out = tmp_path_factory.mktemp("default") / "events.jsonl"
    summary = generate(out, users=300, days=DAYS, start=START, seed=42)
    events = [json.loads(line) for line in read_lines(out)]
    return summary, events


def test_generate_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "one.jsonl.gz", users=40, days=14, seed=7)
    second = generate(tmp_path / "two.jsonl.gz", users=40, days=14, seed=7)

    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.ground_truth_path.read_bytes() == second.ground_truth_path.read_bytes()


def test_generate_different_seed_gives_different_events(tmp_path: Path) -> None:
    first = generate(tmp_path / "seven.jsonl", users=40, days=14, seed=7)
    second = generate(tmp_path / "eight.jsonl", users=40, days=14, seed=8)

    assert first.path.read_bytes() != second.path.read_bytes()


def test_every_line_is_json_with_eventsim_keys_in_order(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    _, events = default_run
    shapes = Counter(
        (
            tuple(event),
            event["userId"] == "",
            event["page"],
            event["auth"],
            event["method"],
            event["status"],
            event["level"],
        )
        for event in events
    )

    for keys, anonymous, page, auth, method, status, level in shapes:
        assert list(keys) == [key for key in KEY_ORDER if key in keys], keys
        assert set(keys) >= set(KEY_ORDER[:9])
        assert not (USER_FIELDS & set(keys)) if anonymous else USER_FIELDS <= set(keys)
        if page == "NextSong":
            assert SONG_FIELDS <= set(keys)
        else:
            assert not (SONG_FIELDS & set(keys))
        assert (method, status) == PAGES[page]
        assert auth in {"Logged In", "Logged Out", "Guest", "Cancelled"}
        assert level in {"free", "paid"}
    for event in events:
        assert isinstance(event["ts"], int) and event["ts"] % 1000 == 0
        assert WINDOW_START_MS <= event["ts"] < WINDOW_END_MS
        assert isinstance(event.get("registration", 0), int)
        assert None not in event.values()


def test_events_are_in_time_order_with_one_session_counter(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    _, events = default_run
    stamps = [event["ts"] for event in events]
    first_seen: dict[int, int] = {}
    for position, event in enumerate(events):
        first_seen.setdefault(event["sessionId"], position)

    assert stamps == sorted(stamps)
    assert sorted(first_seen) == list(range(1, len(first_seen) + 1))


def test_empty_user_id_exactly_on_logged_out_and_guest_events(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    _, events = default_run

    for event in events:
        assert (event["userId"] == "") == (event["auth"] in {"Logged Out", "Guest"})


def test_all_pages_appear_with_next_song_between_70_and_90_percent(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    _, events = default_run
    pages = Counter(event["page"] for event in events)

    assert set(pages) == set(PAGES)
    assert 0.7 <= pages["NextSong"] / len(events) <= 0.9


def test_churners_end_with_cancel_then_confirmation(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    _, events = default_run
    last_in_session = {event["sessionId"]: event for event in events}
    churners = [
        user_events
        for user_events in by_user(events).values()
        if any(e["page"] == "Cancellation Confirmation" for e in user_events)
    ]

    assert churners
    for user_events in churners:
        before, cancel, confirmation = user_events[-3:]
        assert confirmation["page"] == "Cancellation Confirmation"
        assert confirmation["auth"] == "Cancelled"
        assert cancel["page"] == "Cancel" and cancel["auth"] == "Logged In"
        assert before["page"] in {"Downgrade", "Settings", "Roll Advert", "Thumbs Down"}
        assert confirmation["sessionId"] == cancel["sessionId"]
        # Nothing after it, not even logged-out events in that session.
        assert last_in_session[confirmation["sessionId"]] is confirmation


def test_churn_share_is_near_churn_rate_and_matches_ground_truth(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    summary, events = default_run
    users = by_user(events)
    churned = {
        user_id: user_events[-1]["ts"]
        for user_id, user_events in users.items()
        if user_events[-1]["page"] == "Cancellation Confirmation"
    }
    truth = read_truth(summary.ground_truth_path)

    assert summary.users == len(users) == 300
    assert summary.churners == len(churned)
    assert abs(summary.churners / summary.users - 0.22) <= 0.1
    assert set(truth) == set(users)
    assert {u for u, row in truth.items() if row["will_churn"] == "true"} == set(
        churned
    )
    for user_id, ts in churned.items():
        churned_at = datetime.fromisoformat(truth[user_id]["churned_at"])
        assert churned_at.timestamp() * 1000 == ts
    assert all(0.0 <= float(row["churn_propensity"]) <= 1.0 for row in truth.values())


def test_churners_fade_and_dislike_more_before_cancelling(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    _, events = default_run
    rates: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for user_events in by_user(events).values():
        churner = user_events[-1]["page"] == "Cancellation Confirmation"
        end = user_events[-1]["ts"] if churner else WINDOW_END_MS
        begin = max(end - 14 * DAY_MS, WINDOW_START_MS)
        pages = Counter(e["page"] for e in user_events if begin <= e["ts"] < end)
        if pages["NextSong"]:
            rates[churner].append(
                (
                    pages["Thumbs Down"] / pages["NextSong"],
                    pages["NextSong"] / ((end - begin) / DAY_MS),
                )
            )

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    churner_dislikes = mean([dislikes for dislikes, _ in rates[True]])
    other_dislikes = mean([dislikes for dislikes, _ in rates[False]])
    churner_songs = mean([songs for _, songs in rates[True]])
    other_songs = mean([songs for _, songs in rates[False]])
    assert churner_dislikes > other_dislikes or churner_songs < other_songs


def test_file_has_no_newline_after_the_last_line(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    summary, events = default_run
    data = summary.path.read_bytes()

    assert not data.endswith(b"\n")
    assert data.count(b"\n") == len(events) - 1 == summary.events - 1


def test_log_has_the_quirks_of_the_real_data(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    summary, events = default_run
    users = by_user(events)
    firsts = [user_events[0] for user_events in users.values()]
    sessions: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        sessions[event["sessionId"]].append(event)

    assert any(e["userAgent"].startswith('"') for e in firsts)
    assert any(not e["userAgent"].startswith('"') for e in firsts)
    names = [e["firstName"] + e["lastName"] for e in firsts]
    assert any(not name.isascii() for name in names)
    assert any("Ã" in name for name in names)
    assert any("-" in e["location"].rsplit(", ", 1)[1] for e in firsts)
    assert any(e["auth"] == "Guest" for e in events)
    # Sessions already under way when the window opens.
    assert any(session[0]["itemInSession"] > 0 for session in sessions.values())
    assert any(
        {e["auth"] for e in session} >= {"Logged In", "Logged Out"}
        for session in sessions.values()
    )
    registrations = [
        (session[position]["ts"], session[position + 1])
        for session in sessions.values()
        for position, event in enumerate(session[:-1])
        if event["page"] == "Submit Registration"
    ]
    assert registrations
    for submitted_at, following in registrations:
        assert following["auth"] == "Logged In"
        assert following["registration"] == submitted_at
    assert b"\xc2\x85" in summary.path.read_bytes()


def test_level_follows_submit_upgrade_and_submit_downgrade(
    default_run: tuple[GenerateSummary, list[dict]],
) -> None:
    _, events = default_run
    changes = {"Submit Upgrade": ("free", "paid"), "Submit Downgrade": ("paid", "free")}

    seen: Counter[str] = Counter()
    for user_events in by_user(events).values():
        for event, following in zip(user_events, user_events[1:], strict=False):
            if event["page"] in changes:
                before, after = changes[event["page"]]
                assert (event["level"], following["level"]) == (before, after)
                seen[event["page"]] += 1
    assert seen["Submit Upgrade"] and seen["Submit Downgrade"]


def test_gzip_output_is_readable_and_truth_sits_beside_it(tmp_path: Path) -> None:
    summary = generate(tmp_path / "events.jsonl.gz", users=20, days=7, seed=3)

    with gzip.open(summary.path, "rt", encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    assert len(lines) == summary.events
    assert all(json.loads(line)["ts"] for line in lines)
    assert summary.ground_truth_path == tmp_path / "events.ground_truth.csv"
    assert len(read_truth(summary.ground_truth_path)) == 20


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"users": 0}, "users"),
        ({"days": 0}, "days"),
        ({"churn_rate": 1.5}, "churn_rate"),
        ({"churn_rate": -0.1}, "churn_rate"),
        ({"seed": "42"}, "seed"),
    ],
)
def test_bad_arguments_raise_generate_error_naming_the_parameter(
    tmp_path: Path, arguments: dict, parameter: str
) -> None:
    with pytest.raises(GenerateError, match=parameter):
        generate(tmp_path / "ev.jsonl", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_missing_directories_are_created(tmp_path: Path) -> None:
    summary = generate(tmp_path / "missing" / "ev.jsonl", users=5, days=2)

    assert summary.path.parent == tmp_path / "missing"
    assert summary.path.exists()


def test_a_file_in_the_way_of_the_directory_raises_generate_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "blocker").write_text("")
    with pytest.raises(GenerateError, match="out: cannot create directory"):
        generate(tmp_path / "blocker" / "ev.jsonl", users=5, days=2)


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "ev.jsonl"
    generate(out, users=5, days=2, seed=1)

    with pytest.raises(GenerateError, match="overwrite"):
        generate(out, users=5, days=2, seed=2)
    replaced = generate(out, users=5, days=2, seed=2, overwrite=True)
    assert replaced.events == len(read_lines(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ev.ground_truth.csv",
        "ev.jsonl",
    ]


def read_all_lines(paths: tuple[Path, ...]) -> list[str]:
    return [line for path in paths for line in read_lines(path)]


def test_shards_hold_the_same_lines_as_one_file(tmp_path: Path) -> None:
    one = generate(tmp_path / "one" / "ev.jsonl.gz", users=90, days=21, seed=5)
    three = generate(
        tmp_path / "three" / "ev.jsonl.gz", users=90, days=21, seed=5, shards=3
    )

    assert Counter(read_all_lines(three.paths)) == Counter(read_lines(one.path))
    assert three.ground_truth_path.read_bytes() == one.ground_truth_path.read_bytes()
    assert (three.events, three.users, three.churners) == (
        one.events,
        one.users,
        one.churners,
    )


def test_shards_are_numbered_files_each_in_time_order(tmp_path: Path) -> None:
    summary = generate(tmp_path / "ev.jsonl.gz", users=40, days=14, seed=2, shards=3)

    assert [path.name for path in summary.paths] == [
        "ev-00000-of-00003.jsonl.gz",
        "ev-00001-of-00003.jsonl.gz",
        "ev-00002-of-00003.jsonl.gz",
    ]
    assert summary.path == tmp_path / "ev-*-of-00003.jsonl.gz"
    assert sorted(tmp_path.glob(summary.path.name)) == list(summary.paths)
    assert summary.ground_truth_path == tmp_path / "ev.ground_truth.csv"
    users_per_shard = []
    for path in summary.paths:
        events = [json.loads(line) for line in read_lines(path)]
        stamps = [event["ts"] for event in events]
        assert stamps == sorted(stamps)
        users_per_shard.append({e["userId"] for e in events if e["userId"]})
    assert sum(map(len, users_per_shard)) == len(set().union(*users_per_shard)) == 40


def test_session_ids_follow_session_start_times_across_shards(
    tmp_path: Path,
) -> None:
    summary = generate(tmp_path / "ev.jsonl", users=60, days=21, seed=9, shards=4)
    starts: dict[int, int] = {}
    for line in read_all_lines(summary.paths):
        event = json.loads(line)
        session_id = event["sessionId"]
        starts[session_id] = min(starts.get(session_id, event["ts"]), event["ts"])

    assert sorted(starts) == list(range(1, len(starts) + 1))
    in_id_order = [starts[session_id] for session_id in sorted(starts)]
    assert in_id_order == sorted(in_id_order)


def test_two_workers_write_the_same_bytes_as_one(tmp_path: Path) -> None:
    one = generate(tmp_path / "one.jsonl.gz", users=80, days=21, seed=4, workers=1)
    two = generate(tmp_path / "two.jsonl.gz", users=80, days=21, seed=4, workers=2)

    assert two.workers == 2
    assert two.path.read_bytes() == one.path.read_bytes()
    assert two.ground_truth_path.read_bytes() == one.ground_truth_path.read_bytes()


def test_two_workers_write_the_same_shards_as_one(tmp_path: Path) -> None:
    one = generate(tmp_path / "a" / "ev.jsonl", users=50, days=14, shards=3, workers=1)
    two = generate(tmp_path / "b" / "ev.jsonl", users=50, days=14, shards=3, workers=2)

    assert [p.read_bytes() for p in two.paths] == [p.read_bytes() for p in one.paths]


def test_size_target_is_met_within_15_percent(tmp_path: Path) -> None:
    summary = generate(tmp_path / "ev.jsonl", size="20MB", days=30, seed=3)

    assert summary.path.stat().st_size == summary.bytes
    assert abs(summary.bytes / 20e6 - 1) <= 0.15
    assert summary.users == len(read_truth(summary.ground_truth_path))


def test_size_counts_bytes_before_gzip(tmp_path: Path) -> None:
    summary = generate(tmp_path / "ev.jsonl.gz", size=5_000_000, days=14, shards=2)

    assert sum(len(line.encode()) + 1 for line in read_all_lines(summary.paths)) == (
        summary.bytes + summary.shards
    )
    assert abs(summary.bytes / 5e6 - 1) <= 0.15
    assert sum(path.stat().st_size for path in summary.paths) < summary.bytes / 3


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1234, 1234),
        ("1234", 1234),
        ("500MB", 500_000_000),
        ("12GB", 12_000_000_000),
        ("1.5 gb", 1_500_000_000),
        ("2GiB", 2 * 2**30),
        ("64k", 64_000),
    ],
)
def test_size_reads_bytes_and_units(size: str | int, expected: int) -> None:
    assert _parse_size(size) == expected


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"size": "12XB"}, "size: cannot read '12XB'"),
        ({"size": "-5MB"}, "size: cannot read '-5MB'"),
        ({"size": -5}, "size must be at least 1 byte, got -5"),
        ({"size": 0}, "size must be at least 1 byte, got 0"),
        ({"size": 1.5}, "size must be bytes"),
        ({"size": "1GB", "users": 10}, "size='1GB' and users=10 were both given"),
        ({"shards": 0}, "shards must be an integer >= 1, got 0"),
        ({"shards": 2.0}, "shards must be an integer >= 1, got 2.0"),
        ({"workers": 0}, "workers must be an integer >= 1 or None"),
        ({"users": -3}, "users must be an integer >= 1, got -3"),
    ],
)
def test_bad_size_shards_and_workers_raise_one_line_errors(
    tmp_path: Path, arguments: dict, message: str
) -> None:
    with pytest.raises(GenerateError) as raised:
        generate(tmp_path / "ev.jsonl", **arguments)

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_as_out_raises_generate_error(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="is a directory; name a file such as"):
        generate(tmp_path, users=5, days=2, shards=2)


def test_existing_shards_need_overwrite_and_stale_ones_are_removed(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ev.jsonl"
    generate(out, users=12, days=3, shards=4)

    with pytest.raises(GenerateError, match="ev-00000-of-00004.jsonl' already exists"):
        generate(out, users=12, days=3, shards=2)
    with pytest.raises(GenerateError, match="already exists"):
        generate(out, users=12, days=3)
    replaced = generate(out, users=12, days=3, shards=2, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ev-00000-of-00002.jsonl",
        "ev-00001-of-00002.jsonl",
        "ev.ground_truth.csv",
    ]
    assert replaced.events == len(read_all_lines(replaced.paths))
