"""Prometheus metrics of runs: a textfile for node-exporter, or a push to a Pushgateway.

Each process (one `apply`, or a whole `run` loop) owns a fresh CollectorRegistry, so counters
add up over the cycles of a `run` and nothing leaks in from the global registry. With a textfile,
the counters start from what the previous file held: a cron job's runs are separate processes,
and Prometheus expects a textfile's counters to keep growing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import pushadd_to_gateway
from prometheus_client.parser import text_string_to_metric_families

from provisioner.cli.render import summarize
from provisioner.fs.atomic import replace_file
from provisioner.model import Kind, Reason, RunResult, Status

PUSH_JOB = "streamkap_provisioner"
LAST_SUCCESS = "provisioner_last_success_timestamp_seconds"
FILE_MODE = 0o644  # node-exporter runs as another user and must read the file


@dataclass(frozen=True)
class RunStats:
    """What one run amounted to; `result` is None when the run failed before it had one."""

    finished_at: float
    duration: float
    result: RunResult | None = None
    api_statuses: Mapping[int, int] = field(default_factory=dict)
    retries: Mapping[str, int] = field(default_factory=dict)
    invalid: bool = False  # the manifests were rejected: nothing was changed

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.result.failed

    @property
    def label(self) -> str:
        """The run's result as `provisioner_runs_total` counts it."""
        return "ok" if self.ok else "invalid" if self.invalid else "failed"


class Metrics:
    """The provisioner's metrics in their own registry."""

    def __init__(self) -> None:
        # `_created` series say when a counter was born: for a per-run registry that is just the
        # run's start again, one more series per label set in every textfile and push.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self._runs = Counter("provisioner_runs", "Runs by result.", ["result"], registry=r)
        self._actions = Counter(
            "provisioner_actions",
            "Write actions by action and outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self._api = Counter(
            "provisioner_api_requests",
            "Streamkap API responses by HTTP status.",
            ["status"],
            registry=r,
        )
        self._retries = Counter(
            "provisioner_retries", "Retries scheduled, by call.", ["call"], registry=r
        )
        self._summary = Gauge(
            "provisioner_last_run_credentials", "The last run's summary.", ["result"], registry=r
        )
        self._orphans = Gauge(
            "provisioner_last_run_orphans", "Orphans the last run kept.", registry=r
        )
        self._in_use = Gauge(
            "provisioner_credentials_in_use_past_grace",
            "Superseded credentials kept past grace because they are still used (grace_max).",
            registry=r,
        )
        self._duration = Gauge(
            "provisioner_last_run_duration_seconds", "How long the last run took.", registry=r
        )
        self._finished = Gauge(
            "provisioner_last_run_timestamp_seconds", "When the last run ended.", registry=r
        )
        self._success = Gauge(
            "provisioner_last_run_success",
            "1 if every action of the last run succeeded.",
            registry=r,
        )
        self._last_success: Gauge | None = None  # absent until a run succeeds (see below)
        self._counters: dict[str, tuple[Counter, frozenset[str]]] = {
            "provisioner_runs": (self._runs, frozenset({"result"})),
            "provisioner_actions": (self._actions, frozenset({"action", "outcome"})),
            "provisioner_api_requests": (self._api, frozenset({"status"})),
            "provisioner_retries": (self._retries, frozenset({"call"})),
        }
        self._carried = False
        self.textfile_failed = False  # the last textfile write failed: the run must say so

    def carry_over(self, path: Path) -> None:
        """Start the counters from those an earlier process left in the textfile; once only."""
        if self._carried:
            return
        self._carried = True
        for name, labels, value in _previous_counters(path):
            counter, names = self._counters.get(name, (None, frozenset()))
            if counter is not None and set(labels) == names and value > 0:
                counter.labels(**labels).inc(value)

    def observe(self, stats: RunStats) -> None:
        """Record one run (a `run` cycle or a whole `apply`)."""
        self._runs.labels(stats.label).inc()
        self._duration.set(stats.duration)
        self._finished.set(stats.finished_at)
        self._success.set(1 if stats.ok else 0)
        for status, count in stats.api_statuses.items():
            self._api.labels(str(status)).inc(count)
        for call, count in stats.retries.items():
            self._retries.labels(call_label(call)).inc(count)
        if stats.result is not None:
            self._observe_result(stats.result)
        if stats.ok:
            self.mark_success(stats.finished_at)

    def mark_success(self, timestamp: float) -> None:
        # Created lazily: an unset gauge would export 0, and a push would erase the real value.
        if self._last_success is None:
            self._last_success = Gauge(
                LAST_SUCCESS, "When a run last succeeded.", registry=self.registry
            )
        self._last_success.set(timestamp)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def _observe_result(self, result: RunResult) -> None:
        for outcome in result.outcomes:
            self._actions.labels(outcome.action.kind.value, outcome.status.value).inc()
        summary = summarize(result.plan, result.outcomes)
        for name, value in asdict(summary).items():
            self._summary.labels(name).set(value)
        orphans = sum(1 for action in result.plan.actions if action.reason is Reason.ORPHAN)
        self._orphans.set(orphans)
        self._in_use.set(result.plan.count(Kind.NOOP, Reason.IN_USE))
        # Make every outcome series exist from the first run, so rate() sees a 0 before a 1.
        for kind in (Kind.CREATE, Kind.REPLACE, Kind.DELETE):
            for status in Status:
                self._actions.labels(kind.value, status.value)


def call_label(call: str) -> str:
    """A bounded label for a retried call: `DELETE /a/b/<id>` becomes `DELETE /a/b`."""
    method, _, path = call.partition(" ")
    if not path:
        return method
    return f"{method} /" + "/".join(path.strip("/").split("/")[:2])


def write_textfile(path: Path, metrics: Metrics) -> None:
    """Replace `path` atomically, readable by node-exporter (which runs as another user)."""
    replace_file(path, metrics.text(), mode=FILE_MODE)


def _previous_counters(path: Path) -> list[tuple[str, dict[str, str], float]]:
    """(family, labels, value) of every `*_total` counter sample in an earlier textfile."""
    try:
        text = path.read_text(encoding="utf-8")
        return [
            (family.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            if family.type == "counter"
            for sample in family.samples
            if sample.name == f"{family.name}_total"
        ]
    except (OSError, UnicodeDecodeError, ValueError):  # none, or not ours to read: start at 0
        return []


def previous_success(path: Path) -> float | None:
    """The last-success timestamp an earlier run left in the textfile, if any."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except ValueError:  # not a metrics file we can read: start afresh
        return None
    return None


def push(url: str, metrics: Metrics, timeout: float = 10.0) -> None:
    """Push to a Pushgateway, replacing only the metrics this push carries (POST).

    So a failed run, which carries no last-success timestamp, leaves the previous one in place.
    """
    pushadd_to_gateway(url, job=PUSH_JOB, registry=metrics.registry, timeout=timeout)
