"""Quality gates: a Great Expectations checkpoint over a Spark table, from a suite file.

A suite file (``expectations/<suite>.yml``) names the table it guards and lists
expectations, each ``critical`` (a failure stops the run) or ``warning`` (a
failure is logged). ``validate_table`` runs the suite as a GX checkpoint in a
file-mode project under the workdir, keeps the validation results there and
writes HTML Data Docs to ``workdir.data_docs``; ``enforce`` turns failed
critical expectations into a ``QualityGateError``.

Bounds that depend on the day are GX suite parameters: ``now_epoch_ms`` is
always set, and an entry with ``drift`` gets its ``min_value`` and
``max_value`` from what the same expectation observed in the last accepted
run (``load_reference``/``save_reference``), plus or minus a tolerance.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import DataFrame

from sparkify.config import Workdir

# GX reads this when it is imported: its usage statistics stay off in every run.
os.environ["GX_ANALYTICS_ENABLED"] = "False"
# GX logs its bookkeeping (config saves, datasource loads) at INFO; show only its
# warnings unless a level was chosen for it.
if logging.getLogger("great_expectations").level == logging.NOTSET:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402
from great_expectations.checkpoint import UpdateDataDocsAction  # noqa: E402
from great_expectations.core import ExpectationValidationResult  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context import FileDataContext  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    ProgressBarsConfig,
)
from great_expectations.exceptions import ExpectationNotFoundError  # noqa: E402
from great_expectations.expectations import Expectation  # noqa: E402
from great_expectations.expectations.registry import (  # noqa: E402
    get_expectation_impl,
)

__all__ = [
    "SEVERITIES",
    "ExpectationOutcome",
    "QualityGateError",
    "QualityReport",
    "enforce",
    "load_reference",
    "load_suite",
    "save_reference",
    "summary_rows",
    "validate_table",
]

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "warning")

DATASOURCE = "sparkify"
BATCH_DEFINITION = "whole_dataframe"
DATA_DOCS_SITE = "local_site"
# BASIC gives unexpected counts and observed values. With no unexpected
# values asked for, Spark plans each expectation's sample query as empty and
# runs no job for it: a passing suite costs about 40% less. Samples of what
# failed are asked for afterwards, of the failed expectations only.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
MAX_EXAMPLES = 5
QUIET_PROGRESS_BARS = {"globally": False, "metric_calculations": False}

_ENTRY_KEYS = {"type", "kwargs", "columns", "severity", "why", "drift"}
_DRIFT_KEYS = {"name", "tolerance", "min", "max"}
_SUITE_KEYS = {"table", "expectations", "index_columns"}
REFERENCE_FILE = "accepted_reference.json"
# Bump when load_suite turns the same file into different expectations.
_SUITE_FORMAT = 1


@dataclass
class ExpectationOutcome:
    """How one expectation fared: ``observed`` in words, ``examples`` of bad values."""

    table: str
    expectation: str
    severity: str
    success: bool
    observed: str
    examples: list[Any] = field(default_factory=list)
    # For failed row-by-row expectations: a few offending rows, each named by
    # the suite's index columns ("events.jsonl:12") with the values checked.
    rows: list[str] = field(default_factory=list)
    why: str = ""


@dataclass
class QualityReport:
    """The outcome of validating one table against one suite.

    ``success`` is True when no critical expectation failed; failed warnings
    are listed in ``warnings`` but do not change it.
    """

    suite: str
    table: str
    success: bool
    outcomes: list[ExpectationOutcome]
    data_docs_index: Path
    run_id: str
    run_time: datetime
    seconds: float = 0.0
    # What each drift-bounded expectation observed, by its drift name: the
    # reference for the next run once this one is accepted.
    drift: dict[str, float] = field(default_factory=dict)

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.severity == "critical" and not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.severity == "warning" and not o.success]


class QualityGateError(RuntimeError):
    """A critical expectation failed; ``report`` holds every outcome."""

    def __init__(self, report: QualityReport) -> None:
        self.report = report
        failures = report.critical_failures
        lines = [
            f"quality gate failed: table {report.table} broke {len(failures)} "
            f"critical expectation(s) of suite {report.suite}:"
        ]
        for outcome in failures:
            line = f"  - {outcome.expectation} on {outcome.table}: {outcome.observed}"
            if outcome.examples and not outcome.rows:
                line += f"; e.g. {', '.join(repr(v) for v in outcome.examples)}"
            lines.append(line)
            lines.extend(f"      {row}" for row in outcome.rows)
        lines.append(f"Data Docs: {report.data_docs_index}")
        super().__init__("\n".join(lines))


def load_suite(path: Path) -> tuple[str, gx.ExpectationSuite]:
    """Read a suite file into the table it guards and a GX suite named after the file.

    Raises ``ValueError`` naming the file and the entry when the YAML does not
    parse, an expectation type is unknown to GX, a severity is not one of
    ``SEVERITIES``, or an expectation rejects its arguments.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"suite file {path} does not exist")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"suite file {path}: not valid YAML: {exc}") from exc

    if not isinstance(document, dict):
        raise ValueError(
            f"suite file {path}: expected a mapping with 'table' and 'expectations'"
        )
    unknown = sorted(set(document) - _SUITE_KEYS)
    if unknown:
        raise ValueError(
            f"suite file {path}: unknown key(s) {', '.join(unknown)}; "
            f"allowed are {', '.join(sorted(_SUITE_KEYS))}"
        )
    index_columns = document.get("index_columns") or []
    if not isinstance(index_columns, list) or not all(
        isinstance(c, str) for c in index_columns
    ):
        raise ValueError(
            f"suite file {path}: 'index_columns' must be a list of column names"
        )
    table = document.get("table")
    if not isinstance(table, str) or not table:
        raise ValueError(f"suite file {path}: 'table' must name the table it guards")
    entries = document.get("expectations")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"suite file {path}: 'expectations' must be a non-empty list")

    expectations = []
    for index, entry in enumerate(entries):
        expectations.extend(_expectations_from_entry(path, index, entry))
    suite = gx.ExpectationSuite(
        name=path.stem,
        expectations=expectations,
        meta={
            "index_columns": index_columns,
            # Lets a validation reuse the checkpoint stored for the same file.
            "source_sha256": hashlib.sha256(
                f"{_SUITE_FORMAT}:{table}:".encode() + path.read_bytes()
            ).hexdigest(),
        },
    )
    return table, suite


def _expectations_from_entry(path: Path, index: int, entry: Any) -> list[Expectation]:
    where = f"suite file {path}: expectations[{index}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping, got {entry!r}")
    where += f" ({entry.get('type')})"

    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"allowed are {', '.join(sorted(_ENTRY_KEYS))}"
        )
    try:
        expectation_class = get_expectation_impl(str(entry.get("type")))
    except ExpectationNotFoundError:
        raise ValueError(
            f"{where}: unknown expectation type {entry.get('type')!r}; use a GX "
            "expectation type in snake_case, e.g. expect_column_values_to_be_unique"
        ) from None
    severity = entry.get("severity")
    if severity not in SEVERITIES:
        raise ValueError(
            f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}"
        )
    why = entry.get("why")
    if not isinstance(why, str) or not why.strip():
        raise ValueError(f"{where}: 'why' must say, in a line, what the check guards")
    kwargs = entry.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}: 'kwargs' must be a mapping, got {kwargs!r}")
    meta: dict[str, Any] = {"why": why}
    if "drift" in entry:
        meta["drift"] = _drift(where, entry["drift"], kwargs)
        kwargs = {
            **kwargs,
            "min_value": {"$PARAMETER": f"{meta['drift']['name']}_min"},
            "max_value": {"$PARAMETER": f"{meta['drift']['name']}_max"},
        }

    columns = entry.get("columns")
    if columns is None:
        per_column = [kwargs]
    elif (
        isinstance(columns, list)
        and columns
        and all(isinstance(c, str) for c in columns)
        and "column" not in kwargs
    ):
        per_column = [{**kwargs, "column": column} for column in columns]
    else:
        raise ValueError(
            f"{where}: 'columns' must be a non-empty list of column names, "
            "given instead of kwargs.column"
        )

    expectations = []
    for arguments in per_column:
        try:
            expectations.append(
                expectation_class(**arguments, severity=severity, notes=why, meta=meta)
            )
        except Exception as exc:  # GX raises pydantic errors of several kinds
            raise ValueError(f"{where}: bad kwargs {arguments}: {exc}") from exc
    return expectations


def _drift(where: str, drift: Any, kwargs: dict) -> dict[str, Any]:
    """Check an entry's ``drift`` mapping: a name, a tolerance and hard bounds."""
    if not isinstance(drift, dict) or set(drift) != _DRIFT_KEYS:
        raise ValueError(
            f"{where}: 'drift' must be a mapping with exactly the keys "
            f"{', '.join(sorted(_DRIFT_KEYS))}, got {drift!r}"
        )
    if not isinstance(drift["name"], str) or not drift["name"].isidentifier():
        raise ValueError(f"{where}: drift name must be a word, got {drift['name']!r}")
    numbers = [drift[key] for key in ("tolerance", "min", "max")]
    if not all(isinstance(n, int | float) and math.isfinite(n) for n in numbers):
        raise ValueError(f"{where}: drift tolerance, min and max must be numbers")
    if drift["tolerance"] < 0 or drift["min"] > drift["max"]:
        raise ValueError(f"{where}: drift needs tolerance >= 0 and min <= max")
    if {"min_value", "max_value"} & set(kwargs):
        raise ValueError(
            f"{where}: with 'drift', leave min_value and max_value out of kwargs: "
            "they come from the last accepted run"
        )
    return dict(drift)


def validate_table(
    spark_df: DataFrame,
    suite_file: Path,
    workdir: Workdir,
    *,
    reference: Mapping[str, float] | None = None,
) -> QualityReport:
    """Validate ``spark_df`` against ``suite_file`` with a GX checkpoint.

    The GX project lives in ``workdir.gx_project``: suite, validation
    definition and checkpoint are replaced by the suite file's on every call,
    and every run's validation results are kept in its validation results
    store. Data Docs are rebuilt in ``workdir.data_docs``. GX computes on the
    process's running SparkSession (the one ``spark_df`` belongs to) and
    never starts another. ``reference`` holds what the drift-bounded
    expectations observed in the last accepted run (``load_reference``);
    without one their bounds are the suite's hard ``min`` and ``max``.
    Failed expectations do not raise: pass the report to ``enforce``.
    """
    if not isinstance(spark_df, DataFrame):
        raise TypeError(
            f"spark_df must be a pyspark DataFrame, got {type(spark_df).__name__}"
        )
    started = time.monotonic()
    table, suite = load_suite(suite_file)
    log.info(
        "validating %s with suite %s (%d expectations) in %s",
        table,
        suite.name,
        len(suite.expectations),
        workdir.gx_project,
    )

    context = _context(workdir)
    checkpoint = _checkpoint(context, table, suite)
    parameters = _parameters(suite, reference or {})

    run_time = datetime.now(UTC)
    run_id = f"{run_time:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    was_cached = spark_df.is_cached
    try:
        result = checkpoint.run(
            batch_parameters={"dataframe": spark_df},
            expectation_parameters=parameters,
            run_id=RunIdentifier(run_name=run_id, run_time=run_time),
        )
        results = [
            expectation_result
            for suite_result in result.run_results.values()
            for expectation_result in suite_result.results
        ]
        samples = _failure_samples(context, table, suite, spark_df, results, parameters)
    finally:
        # GX persists the batch to compute its metrics; leave the caller's
        # frame as it was.
        if not was_cached:
            spark_df.unpersist()

    # Outcomes in the order of the suite file; GX returns them grouped by metric.
    stored = checkpoint.validation_definitions[0].suite.expectations
    order = {expectation.id: i for i, expectation in enumerate(stored)}
    results.sort(key=lambda r: order.get(r.expectation_config.id, len(order)))
    outcomes = [_outcome(table, r, *samples.get(id(r), ([], []))) for r in results]
    report = QualityReport(
        suite=suite.name,
        table=table,
        success=not any(o.severity == "critical" and not o.success for o in outcomes),
        outcomes=outcomes,
        data_docs_index=workdir.data_docs / "index.html",
        run_id=run_id,
        run_time=run_time,
        seconds=time.monotonic() - started,
        drift=_observed_drift(results),
    )
    log.info(
        "validated %s: %d expectations, %d critical failed, %d warnings failed "
        "in %.1fs; Data Docs at %s",
        table,
        len(outcomes),
        len(report.critical_failures),
        len(report.warnings),
        report.seconds,
        report.data_docs_index,
    )
    return report


def enforce(report: QualityReport) -> None:
    """Log each failed warning; raise ``QualityGateError`` if a critical one failed."""
    for outcome in report.warnings:
        log.warning(
            "%s: warning expectation %s failed: %s",
            outcome.table,
            outcome.expectation,
            outcome.observed,
        )
    if report.critical_failures:
        raise QualityGateError(report)


def _context(workdir: Workdir) -> FileDataContext:
    """The workdir's file-mode GX project, quiet and publishing to ``data_docs``."""
    workdir.gx_project.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=workdir.gx_project)
    site = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(workdir.data_docs),
        },
    }
    sites = context.list_data_docs_sites()
    # Saving rewrites great_expectations.yml, so only when something differs.
    if (
        context.variables.analytics_enabled is not False
        or context.variables.progress_bars != QUIET_PROGRESS_BARS
        or sites.get(DATA_DOCS_SITE) != site
    ):
        context.variables.analytics_enabled = False
        context.variables.progress_bars = ProgressBarsConfig(**QUIET_PROGRESS_BARS)
        context.variables.data_docs_sites = {**sites, DATA_DOCS_SITE: site}
        context.variables.save()
    return context


def _checkpoint(
    context: FileDataContext, table: str, suite: gx.ExpectationSuite
) -> gx.Checkpoint:
    """Create the checkpoint for ``suite`` on ``table``, or bring it up to date.

    The stored one is reused when it was made from the same suite file: GX
    takes seconds to compare and replace a suite of a hundred expectations.
    """
    stored = _stored_checkpoint(context, suite)
    if stored is not None:
        return stored
    try:
        source = context.data_sources.get(DATASOURCE)
    except KeyError:
        source = context.data_sources.add_spark(name=DATASOURCE)
    if table in source.get_asset_names():
        asset = source.get_asset(table)
    else:
        asset = source.add_dataframe_asset(name=table)
    if any(b.name == BATCH_DEFINITION for b in asset.batch_definitions):
        batch = asset.get_batch_definition(BATCH_DEFINITION)
    else:
        batch = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)

    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
    )
    docs = UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE])
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite.name,
            validation_definitions=[definition],
            actions=[docs],
            result_format=RESULT_FORMAT,
        )
    )


def _stored_checkpoint(
    context: FileDataContext, suite: gx.ExpectationSuite
) -> gx.Checkpoint | None:
    """The stored checkpoint of ``suite``, if made from the same file, else None."""
    if suite.name not in {c.name for c in context.checkpoints.all()}:
        return None
    checkpoint = context.checkpoints.get(suite.name)
    definitions = checkpoint.validation_definitions
    if len(definitions) != 1:
        return None
    stored_sha = (definitions[0].suite.meta or {}).get("source_sha256")
    return checkpoint if stored_sha == suite.meta["source_sha256"] else None


def _parameters(
    suite: gx.ExpectationSuite, reference: Mapping[str, float]
) -> dict[str, float]:
    """The suite parameters of one run: the clock and each drift's bounds."""
    parameters: dict[str, float] = {"now_epoch_ms": int(time.time() * 1000)}
    for expectation in suite.expectations:
        drift = (expectation.meta or {}).get("drift")
        if not drift:
            continue
        low, high = drift["min"], drift["max"]
        previous = reference.get(drift["name"])
        if previous is not None:
            low = max(low, previous - drift["tolerance"])
            high = min(high, previous + drift["tolerance"])
        parameters[f"{drift['name']}_min"] = low
        parameters[f"{drift['name']}_max"] = high
    return parameters


def _observed_drift(results: Sequence[ExpectationValidationResult]) -> dict[str, float]:
    observed = {}
    for result in results:
        drift = (result.expectation_config.meta or {}).get("drift")
        value = (result.result or {}).get("observed_value")
        if drift and isinstance(value, int | float) and math.isfinite(value):
            observed[drift["name"]] = float(value)
    return observed


def _failure_samples(
    context: FileDataContext,
    table: str,
    suite: gx.ExpectationSuite,
    spark_df: DataFrame,
    results: Sequence[ExpectationValidationResult],
    parameters: Mapping[str, float],
) -> dict[int, tuple[list[Any], list[str]]]:
    """A few unexpected values and rows of each failed row-by-row expectation.

    Asked of GX only after a failure, one expectation at a time, so a run
    that passes spends no Spark job on them. Rows are named by the suite's
    ``index_columns`` (when the frame has them) and show the values checked.
    Keyed by ``id(result)``: ``(values, rows)``.
    """
    failed = [
        r for r in results if not r.success and "unexpected_count" in (r.result or {})
    ]
    if not failed:
        return {}
    index_columns = [
        c for c in (suite.meta or {}).get("index_columns", []) if c in spark_df.columns
    ]
    batch = (
        context.data_sources.get(DATASOURCE)
        .get_asset(table)
        .get_batch_definition(BATCH_DEFINITION)
        .get_batch(batch_parameters={"dataframe": spark_df})
    )
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY" if index_columns else "BASIC",
        "partial_unexpected_count": MAX_EXAMPLES,
    }
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    samples: dict[int, tuple[list[Any], list[str]]] = {}
    for failure in failed:
        expectation = failure.expectation_config.to_domain_obj()
        try:
            again = batch.validate(
                expectation,
                result_format=result_format,
                expectation_parameters=dict(parameters),
            )
        except Exception:  # a diagnosis only: the failure stands without it
            log.warning("could not list rows failing %s", expectation.expectation_type)
            continue
        details = again.result or {}
        values = list(details.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]
        listed = details.get("partial_unexpected_index_list") or []
        rows = [_describe_row(row, index_columns) for row in listed][:MAX_EXAMPLES]
        samples[id(failure)] = (values, rows)
    return samples


def _describe_row(row: Mapping[str, Any], index_columns: Sequence[str]) -> str:
    where = ":".join(str(row.get(column)) for column in index_columns)
    values = ", ".join(
        f"{key}={value!r}" for key, value in row.items() if key not in index_columns
    )
    return f"{where} ({values})" if values else where


def _outcome(
    table: str,
    result: ExpectationValidationResult,
    examples: list[Any],
    rows: list[str],
) -> ExpectationOutcome:
    config = result.expectation_config
    column = config.kwargs.get("column")
    details = result.result or {}
    return ExpectationOutcome(
        table=table,
        expectation=f"{config.type}({column})" if column else config.type,
        severity=str(getattr(config.severity, "value", config.severity)),
        success=bool(result.success),
        observed=_observed(details, result.exception_info),
        examples=examples,
        rows=rows,
        why=str((config.meta or {}).get("why", "")),
    )


def load_reference(workdir: Workdir) -> dict[str, float]:
    """What the drift-bounded expectations observed in the last accepted run."""
    path = workdir.gx_project / REFERENCE_FILE
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
        return {str(k): float(v) for k, v in document["observed"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring unreadable drift reference %s", path)
        return {}


def save_reference(workdir: Workdir, reports: Sequence[QualityReport]) -> Path:
    """Keep the drift observations of an accepted run for the next one."""
    observed = {**load_reference(workdir)}
    for report in reports:
        observed.update(report.drift)
    path = workdir.gx_project / REFERENCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "accepted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": [report.run_id for report in reports],
        "observed": observed,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def summary_rows(reports: Sequence[QualityReport]) -> list[dict[str, Any]]:
    """One plain row per expectation of each report: what the app shows."""
    return [
        {
            "run_id": report.run_id,
            "validated_at": report.run_time.isoformat(timespec="seconds"),
            "suite": report.suite,
            "table_name": report.table,
            "expectation": outcome.expectation,
            "severity": outcome.severity,
            "success": outcome.success,
            "observed": outcome.observed,
            "examples": json.dumps(
                outcome.rows or [str(v) for v in outcome.examples], ensure_ascii=False
            ),
            "why": outcome.why,
        }
        for report in reports
        for outcome in report.outcomes
    ]


def _observed(details: dict, exception_info: dict | None) -> str:
    errors = _exception_messages(exception_info or {})
    if errors:
        return "error: " + "; ".join(errors)
    if "observed_value" in details:
        value = details["observed_value"]
        if value is None:
            # A mean or share of no rows, say: nothing to observe.
            return "no rows to observe"
        if isinstance(value, float):
            return f"observed {value:.4g}"
        return f"observed {value!r}"
    if "unexpected_count" in details:
        return (
            f"{_count(details['unexpected_count'])} of "
            f"{_count(details.get('element_count'))} rows unexpected"
        )
    return "no observed value"


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _exception_messages(info: dict) -> list[str]:
    # GX gives either one flat record or one record per failed metric.
    records = [info] if "raised_exception" in info else list(info.values())
    messages = {
        str(record.get("exception_message")).strip()
        for record in records
        if isinstance(record, dict) and record.get("raised_exception")
    }
    return sorted(messages)
