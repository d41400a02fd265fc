"""Ingestion: every line read is accepted or rejected, and rejects are kept."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from sparkify.ingest import IngestError, diagnose_line, ingest, resolve_inputs

EVENTSIM_LINE = (
    '{"ts":1538352139000,"userId":"156","sessionId":155,"page":"NextSong",'
    '"auth":"Logged In","method":"PUT","status":200,"level":"free",'
    '"itemInSession":1,"location":"Baton Rouge, LA","userAgent":"\\"Mozilla/5.0'
    ' (Macintosh)\\"","lastName":"Carroll","firstName":"Ishaan",'
    '"registration":1537324931000,"gender":"M","artist":"Serj Tankian",'
    '"song":"Saving Us","length":281.46893}'
)
UDACITY_LINE = (
    '{"artist":null,"auth":"Logged In","firstName":"Walter","gender":"M",'
    '"itemInSession":0,"lastName":"Frye","length":null,"level":"free",'
    '"location":"San Francisco-Oakland-Hayward, CA","method":"GET","page":"Home",'
    '"registration":1540919166796.0,"sessionId":38,"song":null,"status":200,'
    '"ts":1541105830796,"userAgent":"Mozilla\\/5.0 (Macintosh)","userId":"39"}'
)
GUEST_LINE = (
    '{"ts":1538352104000,"userId":"","sessionId":158,"page":"About",'
    '"auth":"Logged Out","method":"GET","status":200,"level":"free",'
    '"itemInSession":50}'
)
BAD_LINES = {
    '{"ts":"yesterday","userId":"1","sessionId":1,"page":"Home",'
    '"auth":"Logged In","level":"free"}': "field 'ts' should be a number",
    '{"ts":1538352139000,"userId":"1","sessionId":1,"page":"Ho': "not valid JSON",
    "": "blank line",
    '["not", "an", "object"]': "not a JSON object",
    '{"userId":"1","sessionId":1,"page":"Home","auth":"Logged In",'
    '"level":"free"}': "missing field 'ts'",
}


def _write(path: Path, lines: list[str], *, newline_at_end: bool = False) -> Path:
    text = "\n".join(lines) + ("\n" if newline_at_end else "")
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_ingest_counts_every_line_and_keeps_rejects(spark, workdir, tmp_path):
    good = [EVENTSIM_LINE, UDACITY_LINE, GUEST_LINE]
    lines = good[:1] + list(BAD_LINES) + good[1:]
    source = _write(tmp_path / "mixed.jsonl.gz", lines)

    result = ingest(spark, [source], workdir, database="ingest_mixed")

    assert result.lines_read == len(lines) == result.accepted + result.rejected
    assert (result.accepted, result.rejected) == (3, 5)
    rejects = {
        row.line_number: row
        for row in spark.table("ingest_mixed.rejected_events").collect()
    }
    for number, (line, reason) in enumerate(BAD_LINES.items(), start=2):
        assert rejects[number].raw_line == line
        assert reason in rejects[number].reason
        assert rejects[number].source_file == str(source)
    kept = [json.loads(x) for x in result.rejects_path.read_text().splitlines()]
    assert sorted(r["line_number"] for r in kept) == sorted(rejects)
    assert sum(result.rejects_by_reason.values()) == 5


def test_ingest_reads_both_log_shapes_with_their_types(spark, workdir, tmp_path):
    source = _write(
        tmp_path / "shapes.jsonl", [EVENTSIM_LINE, UDACITY_LINE, GUEST_LINE]
    )

    ingest(spark, [source], workdir, database="ingest_shapes")

    rows = {row.userId: row for row in spark.table("ingest_shapes.events").collect()}
    assert rows["39"].registration == 1540919166796
    assert rows["39"].ts == 1541105830796
    assert rows["39"].artist is None
    assert rows["156"].length == pytest.approx(281.46893)
    assert rows["156"].userAgent.startswith('"Mozilla')
    assert rows[""].registration is None and rows[""].sessionId == 158


def test_ingest_takes_a_file_only_once(spark, workdir, tmp_path):
    first = _write(tmp_path / "day1.jsonl", [EVENTSIM_LINE])
    ingest(spark, [first], workdir, database="ingest_once")
    second = _write(tmp_path / "day2.jsonl", [GUEST_LINE])

    result = ingest(spark, [first, second], workdir, database="ingest_once")

    assert result.new_files == [str(second)]
    assert result.skipped_files == [str(first)]
    assert spark.table("ingest_once.events").count() == 2


def test_rejected_line_numbers_are_exact_in_split_files(spark, workdir, tmp_path):
    # Distinct events: a repeated line would be rejected as a duplicate.
    lines = [
        GUEST_LINE.replace('"itemInSession":50', f'"itemInSession":{item}')
        for item in range(3000)
    ]
    bad_at = [1, 1234, 2999]
    for number in bad_at:
        lines[number - 1] = "{oops"
    source = _write(tmp_path / "big.jsonl", lines, newline_at_end=True)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "40000")
    try:
        result = ingest(spark, [source], workdir, database="ingest_split")
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")

    assert (result.lines_read, result.rejected) == (3000, 3)
    numbers = [
        row.line_number for row in spark.table("ingest_split.rejected_events").collect()
    ]
    assert sorted(numbers) == bad_at


def test_diagnose_line_names_the_field_and_the_problem():
    assert diagnose_line('{"sessionId": 1.5}') == (
        "field 'sessionId' should be a whole number, got 1.5"
    )
    assert "field 'page' should be text" in diagnose_line('{"page": {"a": 1}}')


def test_resolve_inputs_explains_a_missing_path(tmp_path):
    with pytest.raises(IngestError, match="no such file, directory or glob"):
        resolve_inputs(tmp_path / "nothing-here*.jsonl")
    (tmp_path / "logs").mkdir()
    with pytest.raises(IngestError, match="holds no log files"):
        resolve_inputs(tmp_path / "logs")


def test_a_batch_cut_off_while_appending_is_removed_and_read_again(
    spark, workdir, tmp_path, monkeypatch
):
    import sparkify.ingest as ingestion

    source = _write(tmp_path / "day.jsonl", [EVENTSIM_LINE, GUEST_LINE, "{oops"])
    clean = ingest(spark, [source], workdir, database="ingest_clean")

    def cut_off(*args: object, **kwargs: object) -> None:
        raise ConnectionError("the cluster went away before the files were recorded")

    with monkeypatch.context() as patch:
        patch.setattr(ingestion, "_record_files", cut_off)
        with pytest.raises(ConnectionError):
            ingest(spark, [source], workdir, database="ingest_cut")
    half_done = spark.table("ingest_cut.events").count()
    rerun = ingest(spark, [source], workdir, database="ingest_cut")

    assert half_done == 2
    assert rerun.new_files == [str(source)]
    assert (rerun.accepted, rerun.rejected) == (clean.accepted, clean.rejected)
    for table in ("events", "rejected_events", "ingested_files"):
        assert (
            spark.table(f"ingest_cut.{table}").count()
            == spark.table(f"ingest_clean.{table}").count()
        )
    assert not (workdir.root / "ingest" / "pending-ingest_cut.json").exists()


def test_a_file_uri_is_listed_through_hadoop_and_named_by_its_path(
    spark, workdir, tmp_path
):
    logs = tmp_path / "logs"
    logs.mkdir()
    source = _write(logs / "day.jsonl.gz", [EVENTSIM_LINE, "{oops"])
    _write(logs / "_SUCCESS.json", [GUEST_LINE])

    found = resolve_inputs(logs.as_uri(), spark)
    result = ingest(spark, found, workdir, database="ingest_uri")
    again = ingest(spark, [source], workdir, database="ingest_uri")

    assert [str(file) for file in found] == [str(source)]
    assert (result.accepted, result.rejected) == (1, 1)
    reject = spark.table("ingest_uri.rejected_events").first()
    assert (reject.source_file, reject.line_number) == (str(source), 2)
    assert again.skipped_files == [str(source)]


def test_a_uri_with_nothing_behind_it_is_named(spark, tmp_path):
    with pytest.raises(IngestError, match="no such file, directory or glob"):
        resolve_inputs((tmp_path / "none-*.jsonl").as_uri(), spark)
    with pytest.raises(IngestError, match='No FileSystem for scheme "nosuch"'):
        resolve_inputs("nosuch://bucket/logs/", spark)
