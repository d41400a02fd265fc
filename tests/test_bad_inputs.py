"""Every kind of bad input in ``tests/bad_inputs.py`` gets the outcome it states.

Ingestion runs with the events suite as its gate, as ``sparkify run`` does:
lines that cannot be events are rejected with a reason, events that break a
critical expectation stop their batch, and every line read is either
accepted or rejected.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from sparkify.config import Workdir
from sparkify.ingest import IngestError, ingest
from sparkify.quality import QualityGateError, QualityReport, enforce, validate_table
from tests.bad_inputs import CASES, Case, event_line

pytestmark = pytest.mark.timeout(600)

EVENTS_SUITE = Path(__file__).resolve().parents[1] / "expectations" / "events.yml"
TAKEN_IN = [case for case in CASES if case.expected in ("accepted", "rejected")]
STOPPED = [case for case in CASES if case.expected == "stopped"]
UNREADABLE = [case for case in CASES if case.expected == "unreadable"]


def _ids(cases: list[Case]) -> list[str]:
    return [case.name for case in cases]


def _write(case: Case, folder: Path, session: int | None = None) -> Path:
    path = folder / f"{case.name}{case.suffix}"
    path.write_bytes(case.file_bytes(session))
    return path


def _lines_in(path: Path) -> int:
    """Lines as Spark reads them: split on newline, a final newline ends one."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if not data:
        return 0
    return data.count(b"\n") + (not data.endswith(b"\n"))


class _Gate:
    """The events gate of ``sparkify run``, keeping what it saw."""

    def __init__(self, workdir: Workdir) -> None:
        self.workdir = workdir
        self.reports: list[QualityReport] = []
        self.rows_seen = 0

    def __call__(self, batch: DataFrame) -> None:
        self.rows_seen = batch.count()
        report = validate_table(batch, EVENTS_SUITE, self.workdir)
        self.reports.append(report)
        enforce(report)


def test_corpus_covers_twenty_kinds_and_every_outcome():
    assert len(CASES) >= 20
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.expected for case in CASES} == {
        "accepted",
        "rejected",
        "stopped",
        "unreadable",
    }


@pytest.fixture(scope="module")
def taken_in(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory):
    """Every accepted and rejected case, ingested together as one batch."""
    folder = tmp_path_factory.mktemp("bad-inputs")
    files = {
        case.name: _write(case, folder, session=1000 + number)
        for number, case in enumerate(TAKEN_IN)
    }
    gate = _Gate(Workdir.at(folder / "work"))
    result = ingest(
        spark, list(files.values()), gate.workdir, database="bad_inputs", validate=gate
    )
    return files, result, gate


def test_one_batch_of_odd_lines_counts_every_line(spark, taken_in):
    files, result, gate = taken_in

    read = sum(_lines_in(path) for path in files.values())
    assert result.lines_read == read == result.accepted + result.rejected
    assert result.accepted == spark.table("bad_inputs.events").count()
    assert result.rejected == spark.table("bad_inputs.rejected_events").count()
    assert gate.rows_seen == result.accepted
    (report,) = gate.reports
    assert report.success, report.critical_failures


@pytest.mark.parametrize("case", TAKEN_IN, ids=_ids(TAKEN_IN))
def test_odd_line_is_accepted_or_rejected_with_its_reason(spark, taken_in, case):
    files, _, gate = taken_in
    path = str(files[case.name])
    (record,) = (
        spark.table("bad_inputs.ingested_files").where(f"path = '{path}'").collect()
    )
    rejects = spark.table("bad_inputs.rejected_events").where(f"source_file = '{path}'")
    events = spark.table("bad_inputs.events").where(f"_source_file = '{path}'")

    assert record.lines_read == _lines_in(Path(path))
    assert record.lines_read == record.accepted + record.rejected
    assert events.count() == record.accepted
    assert rejects.count() == record.rejected
    if case.expected == "accepted":
        assert (record.accepted, record.rejected) == (case.count, 0)
    else:
        assert record.rejected == case.count
        assert record.accepted == record.lines_read - case.count
        reasons = [row.reason for row in rejects.collect()]
        assert all(case.reason in reason for reason in reasons), reasons
    if case.warning:
        (report,) = gate.reports
        assert case.warning in [w.expectation for w in report.warnings]


def test_a_line_already_ingested_is_rejected_as_a_duplicate(spark, tmp_path):
    workdir = Workdir.at(tmp_path / "work")
    first = tmp_path / "day1.jsonl"
    first.write_text(event_line(1) + "\n" + event_line(2) + "\n")
    ingest(spark, [first], workdir, database="bad_dup")
    again = tmp_path / "day1-copy.jsonl"
    again.write_text(event_line(2) + "\n" + event_line(3) + "\n")

    result = ingest(spark, [again], workdir, database="bad_dup")

    assert (result.lines_read, result.accepted, result.rejected) == (2, 1, 1)
    (reject,) = spark.table("bad_dup.rejected_events").collect()
    assert reject.line_number == 1 and reject.source_file == str(again)
    assert reject.reason.startswith("duplicate of an event already ingested")
    assert spark.table("bad_dup.events").count() == 3


@pytest.mark.parametrize("case", STOPPED, ids=_ids(STOPPED))
def test_critical_event_stops_its_batch_naming_file_and_line(spark, tmp_path, case):
    path = _write(case, tmp_path)
    gate = _Gate(Workdir.at(tmp_path / "work"))

    with pytest.raises(QualityGateError) as raised:
        ingest(spark, [path], gate.workdir, database="bad_stopped", validate=gate)

    message = str(raised.value)
    assert "table raw.events" in message
    assert case.expectation in message
    assert f"{path}:{case.line}" in message
    failed = [o.expectation for o in raised.value.report.critical_failures]
    assert case.expectation in failed
    # Every line read reached the gate, and nothing was taken in.
    assert gate.rows_seen == _lines_in(path)
    assert not spark.catalog.tableExists("bad_stopped.events")
    assert spark.table("bad_stopped.ingested_files").count() == 0
    assert spark.table("bad_stopped.rejected_events").count() == 0


@pytest.mark.parametrize("case", UNREADABLE, ids=_ids(UNREADABLE))
def test_unreadable_file_stops_the_run_naming_it(spark, workdir, tmp_path, case):
    path = _write(case, tmp_path)
    good = tmp_path / "good.jsonl"
    good.write_text(event_line(1) + "\n")

    with pytest.raises(IngestError) as raised:
        ingest(spark, [good, path], workdir, database="bad_unreadable")

    message = str(raised.value)
    assert str(path) in message and case.reason in message
    assert "Nothing from this batch was taken in" in message
    assert not spark.catalog.tableExists("bad_unreadable.events")
    assert spark.table("bad_unreadable.ingested_files").count() == 0
