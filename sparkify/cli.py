"""The ``sparkify`` command: generate demo logs, run the pipeline, serve the app."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from sparkify.config import WORKDIR_ENV, Workdir

if TYPE_CHECKING:  # the pipeline imports Spark: only when a run needs it
    from sparkify.pipeline import RunSummary

__all__ = ["app"]

app = typer.Typer(
    help="Sparkify churn: from raw event logs to a churn answer an agent can read.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()
log = logging.getLogger("sparkify")

WorkdirOption = Annotated[
    Path | None,
    typer.Option(
        "--workdir",
        envvar=WORKDIR_ENV,
        help="Where the warehouse, metastore, reports, model and serving database go.",
        show_default="./work",
    ),
]
TrackingUriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking and registry URI.",
        show_default="sqlite:///WORKDIR/mlflow/mlflow.db",
    ),
]
RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        envvar="SPARKIFY_RETENTION_RULES",
        help="Retention rules file (YAML) that maps drivers to suggestions.",
        show_default="ml/retention_rules.yml",
    ),
]
MasterOption = Annotated[
    str | None,
    typer.Option(
        envvar="SPARKIFY_SPARK_MASTER",
        help="Spark master URL.",
        show_default="local[*]",
    ),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        envvar="SPARKIFY_DBT_TARGET",
        help="dbt target in profiles/: local, cluster (the session method on "
        "--master) or thrift (a Spark Thrift Server).",
        show_default="cluster when --master is a cluster's, else local",
    ),
]
MinChurnersOption = Annotated[
    int,
    typer.Option(
        help="Fewest churners needed to train a model; with fewer, the champion stays."
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Promote the new model even if the champion is better on the "
        "latest labelled cutoff.",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show progress logs too.")
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="SPARKIFY_SERVING_URL",
        help="SQLAlchemy URL of the serving database.",
        show_default="sqlite:///WORKDIR/serving.db",
    ),
]


def _setup_logging(workdir: Workdir, verbose: bool = False) -> Path:
    """INFO and up to ``WORKDIR/logs/sparkify.log``; warnings to the terminal."""
    # MLflow otherwise gives its logger a handler of its own that prints INFO
    # lines (database migrations, run links) on the terminal.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    log_dir = workdir.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "sparkify.log"
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setLevel(logging.INFO if verbose else logging.WARNING)
    terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [file_handler, terminal]
    root.setLevel(logging.INFO)
    for noisy in ("py4j", "great_expectations", "XGBoost-PySpark", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def generate(
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Events file to write (.jsonl, or .jsonl.gz for gzip); with "
            "--shards, the shard number goes before the extension.",
        ),
    ] = Path("demo-data/events.jsonl.gz"),
    users: Annotated[
        int | None,
        typer.Option(
            help="Users in the logs.", show_default="300, or what --size needs"
        ),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(help="Target size of the logs before gzip, e.g. 1GB or 12GB."),
    ] = None,
    days: Annotated[int, typer.Option(help="Days of activity.")] = 60,
    start: Annotated[
        dt.datetime,
        typer.Option(
            formats=["%Y-%m-%d"], help="First day (UTC).", show_default="2018-10-01"
        ),
    ] = dt.datetime(2018, 10, 1),
    seed: Annotated[int, typer.Option(help="Same seed, same events.")] = 42,
    churn_rate: Annotated[
        float, typer.Option(help="Share of users who cancel in the window.")
    ] = 0.22,
    shards: Annotated[int, typer.Option(help="Number of files to write.")] = 1,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes to generate with.", show_default="all cores"),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    compare_with: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="A real log file to compare the generated logs with "
            "(prints the realism report; one output file only).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write deterministic event logs in the Sparkify format."""
    from sparkify.generate import GenerateError
    from sparkify.generate import generate as run_generate

    if compare_with is not None and shards != 1:
        raise _fail("--compare needs a single output file; leave out --shards")
    try:
        summary = run_generate(
            out_path,
            users=users,
            size=size,
            days=days,
            start=start.date(),
            seed=seed,
            churn_rate=churn_rate,
            shards=shards,
            workers=workers,
            overwrite=overwrite,
        )
    except GenerateError as exc:
        raise _fail(str(exc)) from None
    rate = summary.bytes / 1e6 / summary.seconds if summary.seconds else 0.0
    out.print(
        f"wrote {summary.events:,} events of {summary.users:,} users "
        f"({summary.churners:,} cancel), {summary.bytes / 1e9:.2f} GB before "
        f"compression, to {summary.path} in {summary.seconds:.1f}s "
        f"({rate:.0f} MB/s); ground truth in {summary.ground_truth_path}",
        soft_wrap=True,
        highlight=False,
    )
    if compare_with is not None:
        compare(summary.path, compare_with)


@app.command()
def compare(
    generated: Annotated[Path, typer.Argument(help="Generated log file.")],
    real: Annotated[Path, typer.Argument(help="Real log file to compare with.")],
    tolerance: Annotated[
        float, typer.Option(help="Largest relative difference called ok.")
    ] = 0.2,
) -> None:
    """Print the realism report: generated logs next to real ones."""
    from sparkify.realism import RealismError
    from sparkify.realism import compare as run_compare

    try:
        report = run_compare(generated, real, tolerance=tolerance)
    except RealismError as exc:
        raise _fail(str(exc)) from None
    out.print(report.to_text(), highlight=False, soft_wrap=True)


@app.command()
def run(
    input_spec: Annotated[
        str,
        typer.Option(
            "--input",
            help="Event logs: a file, a directory or a quoted glob; "
            "plain or gzip JSON lines.",
        ),
    ],
    workdir: WorkdirOption = None,
    master: MasterOption = None,
    target: TargetOption = None,
    min_churners: MinChurnersOption = 5,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild every dbt model from the raw tables instead of "
            "taking in only the days new logs touched (after changing a "
            "model's columns or the cutoff settings).",
        ),
    ] = False,
    force: ForceOption = False,
    tracking_uri: TrackingUriOption = None,
    rules: RulesOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Ingest logs, build features with dbt, check them, train, score, publish.

    Only files not ingested before are read; the dbt models then recompute
    only the days and cutoffs those files touched.
    """
    from sparkify.pipeline import STEPS, run_pipeline

    place = Workdir.at(workdir)
    log_path = _setup_logging(place, verbose)
    _use_rules(rules)
    done: list[str] = []
    with console.status("starting Spark") as status:

        def on_step(name: str) -> None:
            if done:
                console.print(f"[green]✓[/] {done[-1]}")
            done.append(name)
            step = STEPS.index(name) + 1
            status.update(f"[{step}/{len(STEPS)}] {name}")

        try:
            summary = run_pipeline(
                input_spec,
                place,
                master=master,
                target=target,
                min_positives=min_churners,
                full_refresh=full_refresh,
                force=force,
                tracking_uri=tracking_uri,
                on_step=on_step,
            )
        except Exception as exc:  # noqa: BLE001 - every failure gets a sentence
            if done:
                console.print(f"[red]✗[/] {done[-1]}")
            raise _fail(_explain(exc, log_path), 1) from None
    console.print(f"[green]✓[/] {done[-1]}")
    _print_summary(summary, log_path)


def _explain(exc: Exception, log_path: Path) -> str:
    from ml import RegistryError
    from sparkify.engine import ClusterError
    from sparkify.ingest import IngestError
    from sparkify.quality import QualityGateError
    from sparkify.transform import TransformError

    # INFO: the traceback goes to the log file, the terminal gets a sentence.
    log.info("run failed", exc_info=exc)
    ours = (
        IngestError | TransformError | QualityGateError | RegistryError | ClusterError
    )
    if isinstance(exc, ours | ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}\n(full traceback in {log_path})"


def _print_summary(summary: RunSummary, log_path: Path) -> None:
    ingest = summary.ingest
    table = Table(title="sparkify run", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    files = f"{len(ingest.new_files)} new, {len(ingest.skipped_files)} already ingested"
    if ingest.changed_files:
        files += f", {len(ingest.changed_files)} changed since (not ingested)"
    table.add_row("files", files)
    table.add_row("events read", f"{ingest.lines_read:,}")
    table.add_row("events accepted", f"{ingest.accepted:,}")
    rejected = f"{ingest.rejected:,}"
    if ingest.rejected:
        top = sorted(ingest.rejects_by_reason.items(), key=lambda item: -item[1])
        rejected += " (" + "; ".join(f"{n:,} {reason}" for reason, n in top[:3]) + ")"
    table.add_row("events rejected", rejected)
    table.add_row(
        "customers",
        f"{summary.customers:,} ({summary.active:,} active, "
        f"{summary.cancelled:,} cancelled) as of {summary.as_of}",
    )
    table.add_row("quality", summary.quality)
    for warning in summary.quality_warnings:
        table.add_row("quality warning", warning)
    table.add_row("model", summary.model_status)
    _model_rows(table, summary)
    table.add_row("scored", f"{summary.scored:,} active customers")
    table.add_row(
        "seconds",
        ", ".join(f"{name} {secs:.0f}" for name, secs in summary.seconds.items()),
    )
    reports = summary.quality_reports
    table.add_row(
        "validation seconds",
        f"{sum(r.seconds for r in reports):.0f} in all ("
        + ", ".join(f"{r.table} {r.seconds:.0f}" for r in reports)
        + ")",
    )
    out.print(table)
    _print_evaluation(summary)
    # Paths on lines of their own, never wrapped, so they can be copied.
    paths = {
        "data docs": summary.data_docs,
        "serving database": summary.serving_url,
        "rejected lines": ingest.rejects_path,
        "log": log_path,
    }
    for label, path in paths.items():
        if path:
            out.print(f"{label}: {path}", soft_wrap=True, highlight=False)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _model_rows(table: Table, summary: RunSummary) -> None:
    """The champion's figures and the promotion decision, as summary rows."""
    holdout = summary.holdout
    if holdout:
        table.add_row(
            "evaluation",
            f"{summary.model_version} on cutoff {holdout['cutoff_date']}: "
            f"{holdout['rows']:,} customers, {holdout['positives']} churned; "
            f"ROC-AUC {_num(holdout['roc_auc'])}, PR-AUC {_num(holdout['pr_auc'])} "
            f"(base rate {holdout['base_rate']:.3f}), churn-class F1 "
            f"{holdout['f1']:.3f}, top-10% lift {_num(holdout['top_lift'])} "
            f"({holdout['top_positives']} of {holdout['positives']} churners in "
            f"the top {holdout['top_rows']:,})",
        )
    if summary.decision and summary.decision != summary.model_status:
        table.add_row("decision", summary.decision)


def _print_evaluation(summary: RunSummary) -> None:
    if summary.evaluation:
        out.print(summary.evaluation, soft_wrap=True, highlight=False)
    if summary.tracking_uri:
        out.print(f"mlflow: {summary.tracking_uri}", soft_wrap=True, highlight=False)


def _use_rules(rules: Path | None) -> None:
    """Check the rules file now, before Spark starts; the run reads it later."""
    from ml import RULES_ENV, RulesError, load_rules

    try:
        load_rules(rules)
    except RulesError as exc:
        raise _fail(str(exc)) from None
    if rules is not None:
        os.environ[RULES_ENV] = str(rules.resolve())


@app.command()
def train(
    workdir: WorkdirOption = None,
    master: MasterOption = None,
    min_churners: MinChurnersOption = 5,
    force: ForceOption = False,
    tracking_uri: TrackingUriOption = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="xgboost workers (default: Spark's parallelism, at most its "
            "task slots)."
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Train a challenger on the tables the last run built; promote it unless worse.

    The challenger is promoted when it is at least as good as the champion on
    the latest labelled cutoff.
    """
    from sparkify.pipeline import run_training

    place = Workdir.at(workdir)
    log_path = _setup_logging(place, verbose)
    with console.status("training"):
        try:
            summary = run_training(
                place,
                master=master,
                min_churners=min_churners,
                force=force,
                tracking_uri=tracking_uri,
                num_workers=workers,
            )
        except Exception as exc:  # noqa: BLE001 - every failure gets a sentence
            raise _fail(_explain(exc, log_path), 1) from None
    out.print(summary.decision, soft_wrap=True, highlight=False)
    _print_evaluation(summary)
    out.print(
        f"seconds: train {summary.seconds.get('train', 0):.0f}; log: {log_path}",
        soft_wrap=True,
        highlight=False,
    )


@app.command()
def score(
    workdir: WorkdirOption = None,
    master: MasterOption = None,
    tracking_uri: TrackingUriOption = None,
    rules: RulesOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Score every active customer with the champion, into the serving database.

    Each score comes with its reasons and a retention suggestion.
    """
    from sparkify.pipeline import run_scoring

    place = Workdir.at(workdir)
    log_path = _setup_logging(place, verbose)
    _use_rules(rules)
    with console.status("scoring"):
        try:
            summary = run_scoring(place, master=master, tracking_uri=tracking_uri)
        except Exception as exc:  # noqa: BLE001 - every failure gets a sentence
            raise _fail(_explain(exc, log_path), 1) from None
    out.print(
        f"scored {summary.scored:,} active customers with model "
        f"{summary.model_version}; seconds: score "
        f"{summary.seconds.get('score', 0):.0f}, publish "
        f"{summary.seconds.get('publish', 0):.0f}",
        soft_wrap=True,
        highlight=False,
    )
    table = Table(show_header=False)
    _model_rows(table, summary)
    out.print(table)
    out.print(
        f"serving database: {summary.serving_url}", soft_wrap=True, highlight=False
    )


def _serving_url(workdir: Path | None, db: str | None) -> str:
    return db or Workdir.at(workdir).serving_url


@app.command()
def quality(
    workdir: WorkdirOption = None,
    db: DbOption = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every expectation, not only failures.")
    ] = False,
) -> None:
    """Print the latest run's quality results and where the Data Docs are.

    Reads the serving database only (no Spark). Exits 1 when the latest run
    was stopped by a critical expectation.
    """
    from sparkify.serving import load_quality

    url = _serving_url(workdir, db)
    try:
        facts, results = load_quality(url)
    except LookupError as exc:
        raise _fail(f"{exc}; run `sparkify run` first") from None
    except Exception as exc:  # noqa: BLE001 - an unreadable database gets a sentence
        raise _fail(f"cannot read the serving database {url}: {exc}") from None

    status = facts.get("quality_status", "unknown")
    out.print(
        f"latest validation: [bold {'green' if status == 'passed' else 'red'}]"
        f"{status}[/] at {facts.get('quality_checked_at', '?')}; "
        f"{facts.get('quality_summary', '')}",
        highlight=False,
    )
    suites = Table(title="suites", title_justify="left")
    for column in ("suite", "table", "passed", "critical failed", "warnings"):
        named = column in ("suite", "table")
        # Names stay whole; the counts' headers wrap instead.
        suites.add_column(column, justify="left" if named else "right", no_wrap=named)
    for (suite, table_name), group in results.groupby(
        ["suite", "table_name"], sort=False
    ):
        failed = group[~group["success"].astype(bool)]
        suites.add_row(
            suite,
            table_name,
            f"{int(group['success'].astype(bool).sum())} of {len(group)}",
            str(int((failed["severity"] == "critical").sum())),
            str(int((failed["severity"] == "warning").sum())),
        )
    out.print(suites)

    # One block per expectation rather than a table: offending rows name
    # files and lines, which must stay whole to be copied.
    shown = results if show_all else results[~results["success"].astype(bool)]
    if len(shown):
        out.print("expectations:" if show_all else "failed expectations:")
    for row in shown.itertuples():
        result = "passed" if row.success else "[red]failed[/]"
        out.print(
            f"  {result} {row.severity} [bold]{row.expectation}[/] on {row.table_name}",
            soft_wrap=True,
            highlight=False,
        )
        if not row.success:
            out.print(f"    observed: {row.observed}", soft_wrap=True, highlight=False)
            for example in json.loads(row.examples or "[]")[:5]:
                out.print(f"    - {example}", soft_wrap=True, highlight=False)
    docs = facts.get("data_docs")
    if docs:
        out.print(f"data docs: {Path(docs).as_uri()}", soft_wrap=True, highlight=False)
    if status == "failed":
        raise typer.Exit(1)


@app.command()
def serve(
    workdir: WorkdirOption = None,
    db: DbOption = None,
    host: Annotated[
        str,
        typer.Option(help="Address to bind; anything but loopback needs a login."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="Listen on every network interface (0.0.0.0); needs a login.",
        ),
    ] = False,
    users_file: Annotated[
        Path | None,
        typer.Option(
            help="Users who may log in (lines from `sparkify app-user`); else "
            "SPARKIFY_APP_USERS_FILE, or SPARKIFY_APP_USERNAME and "
            "SPARKIFY_APP_PASSWORD.",
        ),
    ] = None,
    mask_names: Annotated[
        bool, typer.Option("--mask-names", help="Hide customers' names from everyone.")
    ] = False,
) -> None:
    """Start the agents' Gradio app on the serving database."""
    from chat_ui import serve as serve_app
    from chat_ui._auth import AuthError, check_serving, load_users

    url = _serving_url(workdir, db)
    host = "0.0.0.0" if public else host
    try:
        users = load_users(users_file)
    except AuthError as exc:
        raise _fail(str(exc)) from None
    login = f"login required ({users.source})" if users else "no login"
    try:
        check_serving(host, port, users)
        out.print(f"serving {url} on http://{host}:{port}, {login}", highlight=False)
        serve_app(url, host=host, port=port, users=users, mask_names=mask_names)
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None


@app.command("app-user")
def app_user(
    username: Annotated[str, typer.Argument(help="The name to log in with.")],
    role: Annotated[
        str,
        typer.Option(help="agent (sees customers' names) or analyst (names hidden)."),
    ] = "agent",
) -> None:
    """Print a users-file line for USERNAME; the password is asked for.

    Append it to the users file: `sparkify app-user ana >> users`.
    """
    from chat_ui._auth import ROLES, hash_password

    if role not in ROLES:
        raise _fail(f"--role must be one of {sorted(ROLES)}, got {role!r}")
    if not username or ":" in username or username != username.strip():
        raise _fail(
            f"USERNAME must be non-empty without ':' or spaces, got {username!r}"
        )
    # getpass asks on the terminal (stderr without one), so stdout holds the
    # line alone: `sparkify app-user ana >> users` works.
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        raise _fail("the two passwords differ")
    if len(password) < 8:
        raise _fail("the password must have at least 8 characters")
    typer.echo(f"{username}:{role}:{hash_password(password)}")


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="A customer ID or a question.")],
    workdir: WorkdirOption = None,
    db: DbOption = None,
) -> None:
    """Print the app's answer to TEXT in the terminal."""
    from chat_ui import answer

    out.print(Markdown(answer(text, _serving_url(workdir, db))))


@app.command()
def demo(
    workdir: WorkdirOption = None,
    users: Annotated[int, typer.Option(help="Users in the demo logs.")] = 300,
    serve_app: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the app afterwards.")
    ] = True,
) -> None:
    """Generate demo logs, run the pipeline on them and start the app."""
    place = Workdir.at(workdir)
    logs = place.root / "demo-data" / "events.jsonl.gz"
    if not logs.exists():
        generate(out_path=logs, users=users)
    # The run gets a process of its own, so its Spark JVM is gone before the
    # app, which needs none, starts.
    pipeline = [sys.executable, "-m", "sparkify", "run", "--input", str(logs)]
    finished = subprocess.run([*pipeline, "--workdir", str(place.root)], check=False)
    if finished.returncode:
        raise typer.Exit(finished.returncode)
    if serve_app:
        serve(workdir=place.root)
