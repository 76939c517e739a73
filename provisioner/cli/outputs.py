"""One apply with everything around it: progress, metrics, the JSON report and the summary."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio
import structlog

from provisioner.cli import metrics
from provisioner.cli.progress import Tracker
from provisioner.cli.render import Summary, action_json, counted, run_report, summarize
from provisioner.cli.views import View, has_news
from provisioner.errors import ManifestError, UsageError, first_error
from provisioner.fs.atomic import describe, ensure_dir, replace_file
from provisioner.logs import register_url_password, scrub_url
from provisioner.model import Outcome, Plan, RunResult, Status
from provisioner.reconcile import pipeline
from provisioner.reconcile.session import Job
from provisioner.runtime import Halt, Unobserved

log = structlog.get_logger("provisioner.outputs")

_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Outputs:
    """Where a run's results go besides the summary on stderr."""

    report: Path | None = None
    metrics_file: Path | None = None
    pushgateway: str | None = None
    progress: bool = True  # where the view has a live display: on a terminal, not in JSON

    def check(self) -> None:
        """Fail before any API call when an output could never be written."""
        register_url_password(self.pushgateway)
        if self.report is not None:  # made like a sink's directory (0700): a report is ours
            _make_parent("--report", self.report)
        # The textfile directory is node-exporter's: a missing one is a typo it would never read.
        if self.metrics_file is not None and not self.metrics_file.absolute().parent.is_dir():
            parent = self.metrics_file.absolute().parent
            raise UsageError(f"--metrics-file {self.metrics_file}: directory {parent} not found")
        if self.pushgateway is not None and not self.pushgateway.startswith(_SCHEMES):
            shown = scrub_url(self.pushgateway)
            raise UsageError(f"--pushgateway {shown}: expected an http(s):// URL")


def _make_parent(flag: str, path: Path) -> None:
    """Create the directory `path` goes in (and its parents, 0700) unless it exists."""
    parent = path.absolute().parent
    try:
        ensure_dir(parent)
    except OSError as exc:
        raise UsageError(
            f"{flag} {path}: cannot create directory {parent}: {describe(exc)}"
        ) from None
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is not a directory")


def parse_outputs(namespace: argparse.Namespace) -> Outputs:
    """Where results go, from the flags `add_output_flags` added and `--report`."""
    return Outputs(
        report=namespace.report,
        metrics_file=namespace.metrics_file,
        pushgateway=namespace.pushgateway,
        progress=not namespace.no_progress,
    )


@dataclass
class _Tally(Unobserved):
    """What a run counts as it goes (for metrics), kept even when it fails half-way."""

    statuses: Counter[int] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)

    def on_retry(self, call: str) -> None:
        self.retries[call] += 1

    def on_status(self, status: int) -> None:
        self.statuses[status] += 1


async def apply_once(
    job: Job,
    outputs: Outputs,
    recorder: metrics.Metrics,
    view: View,
    halt: Halt | None = None,
) -> RunResult:
    """Load and apply; whatever happens, the run is recorded in the metrics and published.

    `halt` is the process's (signals set it); the run gets a child of it for its own reasons.
    """
    started, tally = time.monotonic(), _Tally()
    try:
        observer = _shown(view, outputs.progress, tally)
        result = await pipeline.apply_job(
            job, halt=halt.child() if halt else None, observer=observer
        )
    except BaseException as exc:
        invalid = isinstance(first_error(exc), ManifestError)
        await _publish(outputs, recorder, _stats(started, tally, None, invalid=invalid))
        raise
    await _publish(outputs, recorder, _stats(started, tally, result))
    return result


@contextmanager
def _shown(view: View, progress: bool, tally: _Tally) -> Iterator[_Shown]:
    """The observer of one apply, with its progress display running."""
    with view.tracker(progress) as tracker:
        yield _Shown(view, tracker, tally)


class _Shown:
    """The run's one observer: before anything is written, say what will be; then let the
    progress display follow, and count retries and statuses for the metrics."""

    def __init__(self, view: View, tracker: Tracker, tally: _Tally) -> None:
        self._view = view
        self._tracker = tracker
        self._tally = tally

    def on_plan(self, plan: Plan) -> None:
        show_changes(plan, self._view)
        self._tracker.on_plan(plan)

    def on_outcome(self, outcome: Outcome) -> None:
        self._tracker.on_outcome(outcome)

    def on_retry(self, call: str) -> None:
        self._tally.on_retry(call)

    def on_status(self, status: int) -> None:
        self._tally.on_status(status)


def show_changes(plan: Plan, view: View) -> None:
    """What the plan changes or leaves in place on purpose, and once per cause what could not be
    planned; nothing when quiet and there is neither."""
    if has_news(plan) or not view.quiet:
        view.changes(plan)


def _stats(
    started: float, tally: _Tally, result: RunResult | None, *, invalid: bool = False
) -> metrics.RunStats:
    duration = time.monotonic() - started
    return metrics.RunStats(time.time(), duration, result, tally.statuses, tally.retries, invalid)


async def _publish(outputs: Outputs, recorder: metrics.Metrics, stats: metrics.RunStats) -> None:
    with anyio.CancelScope(shield=True):  # an aborted run is still worth recording
        await anyio.to_thread.run_sync(publish_metrics, outputs, recorder, stats)


def publish_metrics(outputs: Outputs, recorder: metrics.Metrics, stats: metrics.RunStats) -> None:
    """Record the run, then write the textfile and push; blocking I/O."""
    if outputs.metrics_file is not None:
        recorder.carry_over(outputs.metrics_file)  # counters are cumulative across processes
    if outputs.metrics_file is not None and not stats.ok:
        carried = metrics.previous_success(outputs.metrics_file)
        if carried is not None:  # keep what an earlier process knew of the last success
            recorder.mark_success(carried)
    recorder.observe(stats)
    write_metrics(outputs, recorder)


def finish(result: RunResult, outputs: Outputs, view: View) -> bool:
    """Write the report, then print each failure and the summary; True if all went well."""
    written = outputs.report is None or write_report(outputs.report, result)
    summary = summarize(result.plan, result.outcomes)
    _print_failures(result.outcomes, view)
    if not (view.quiet and _uneventful(summary)):
        level = "info" if summary.complete else "error"
        view.say(summary.line(), "apply.summary", level, **asdict(summary))
    return written and summary.complete


def _uneventful(summary: Summary) -> bool:
    """Nothing changed and nothing failed: a quiet run has nothing to say."""
    changed = summary.created + summary.updated + summary.replaced + summary.restored
    changed += summary.deleted
    return summary.complete and not changed


def _print_failures(outcomes: Sequence[Outcome], view: View) -> None:
    """Each failure on its own line; actions a stopped run never started, as one line."""
    skipped = 0
    for outcome in outcomes:
        if outcome.status is Status.SKIPPED:
            skipped += 1
        elif outcome.error and outcome.status is not Status.DEFERRED:  # counted in the summary
            action = outcome.action
            text = f"failed: {action.key}: {outcome.error}"
            view.say(text, "apply.failed", "error", **action_json(action), error=outcome.error)
    if skipped:
        text = f"not started: {counted(skipped, 'actions')}; the next apply does them"
        view.say(text, "apply.not_started", "warning", actions=skipped)


def write_report(path: Path, result: RunResult) -> bool:
    """Replace the JSON report atomically (ids and outcomes, never a secret); False on failure."""
    report = run_report(
        result.run_id, result.started_at, result.finished_at, result.plan, result.outcomes
    )
    try:
        replace_file(path, (json.dumps(report, indent=2) + "\n").encode())
    except OSError as exc:
        log.error("report.write_failed", path=str(path), error=describe(exc))
        return False
    return True


def write_metrics(outputs: Outputs, recorder: metrics.Metrics) -> None:
    """Write the textfile and push; a failure is logged. A textfile that could not be written
    fails `apply` afterwards (like --report); a failed push never does."""
    if outputs.metrics_file is not None:
        try:
            metrics.write_textfile(outputs.metrics_file, recorder)
        except OSError as exc:
            log.error("metrics.write_failed", path=str(outputs.metrics_file), error=describe(exc))
            recorder.textfile_failed = True
        else:
            recorder.textfile_failed = False
    if outputs.pushgateway is not None:
        shown = scrub_url(outputs.pushgateway)  # its user and password stay out of the log
        try:
            metrics.push(outputs.pushgateway, recorder)
        except Exception as exc:  # URLError, HTTPError, InvalidURL...: never fail the run for it
            log.error("metrics.push_failed", url=shown, error=scrub_url(str(exc)))
        else:
            log.info("metrics.pushed", url=shown)
