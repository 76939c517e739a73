"""The `provisioner` command: parse flags, run a job, map outcomes and errors to exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from provisioner import jobs, metrics, runs
from provisioner.durations import parse_duration
from provisioner.engine import Engine
from provisioner.errors import AuthError, ManifestError, ProvisionerError, UsageError
from provisioner.gcpause import freeze_startup
from provisioner.logs import configure_logging, redact
from provisioner.manifest import DEFAULT_SINK, manifest_schema
from provisioner.reconciler import Reconciler, reconcile
from provisioner.report import plan_json, render_plan
from provisioner.schedule import Cadence
from provisioner.settings import Settings
from provisioner.sinks import parse_sink_uri

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CHANGES = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and `python -m provisioner`."""
    args = build_parser().parse_args(argv)
    freeze_startup()
    try:
        return int(args.handler(args))
    except ManifestError as exc:
        for problem in exc.problems:
            _err(problem)
        _err(f"error: {len(exc.problems)} problem(s) in the manifests; nothing was changed")
        return EXIT_INVALID
    except (UsageError, AuthError) as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID
    except ProvisionerError as exc:
        _err(f"error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_FAILED
    except BrokenPipeError:  # stdout closed early (`| head`): not our failure to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provisioner",
        description="Provision Streamkap API client credentials from YAML manifests.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="load and validate manifests; no network")
    _add_paths(validate)
    validate.add_argument("--sink", metavar="URI", help="the `default` sink, e.g. file:./secrets")
    validate.set_defaults(handler=cmd_validate)

    plan = commands.add_parser("plan", help="show what apply would do; no writes")
    _add_paths(plan)
    _add_run_flags(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON on stdout")
    plan.add_argument(
        "--detailed-exitcode", action="store_true", help="exit 3 when changes are pending"
    )
    plan.set_defaults(handler=cmd_plan)

    apply = commands.add_parser("apply", help="reconcile: create, replace and delete")
    _add_paths(apply)
    _add_run_flags(apply)
    apply.add_argument("--report", type=Path, metavar="FILE", help="write a JSON run report")
    _add_output_flags(apply)
    apply.set_defaults(handler=cmd_apply)

    _add_run_command(commands)

    simulate = commands.add_parser("simulate", help="serve the simulator on loopback")
    simulate.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    simulate.add_argument(
        "--vault-port", type=int, metavar="Q", help="also serve a Vault stub (KV v2 at `secret`)"
    )
    simulate.add_argument("--latency", type=float, default=0.0, help="seconds added per call")
    simulate.add_argument("--error-rate", type=float, default=0.0, help="share of calls -> 503")
    simulate.add_argument("--rate-limit", type=float, default=None, help="requests per second")
    simulate.add_argument("--burst", type=int, default=10)
    simulate.add_argument("--drop-after-create-rate", type=float, default=0.0)
    simulate.add_argument("--error-after-create-rate", type=float, default=0.0)
    simulate.add_argument("--token-ttl", type=int, default=3600, help="token lifetime, seconds")
    simulate.set_defaults(handler=cmd_simulate)

    schema = commands.add_parser("schema", help="print the manifest JSON Schema")
    schema.set_defaults(handler=cmd_schema)
    return parser


def _add_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or dirs")


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sink", metavar="URI", help="the `default` sink, e.g. file:./secrets")
    parser.add_argument("--concurrency", type=int, metavar="N", help="most requests in flight")
    parser.add_argument("--prune", action="store_true", help="delete orphaned credentials")
    parser.add_argument(
        "--simulate", action="store_true", help="run against the in-process simulator"
    )


# --- commands ------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    manifests = jobs.load(_job(args, settings))
    services = {credential.service for credential in manifests.credentials}
    _err(
        f"OK: {len(manifests.credentials)} credentials for {len(services)} services "
        f"in {len(manifests.files)} files"
    )
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    settings = _settings(args)
    job = _job(args, settings)
    manifests = jobs.load(job)

    async def run() -> jobs.Planned:
        async with jobs.open_session(job, manifests) as session:
            planned = await jobs.make_plan(session, prune=job.prune)
            for key, error in planned.blocked.items():
                _err(f"cannot plan {key}: {error}")
            return planned

    planned = _run(run)
    the_plan = planned.plan
    _err(render_plan(the_plan))
    if args.json:
        blocked = {key: str(error) for key, error in planned.blocked.items()}
        print(json.dumps(plan_json(the_plan, blocked), indent=2))
    if planned.blocked:  # those keys were not planned: neither "no changes" nor "changes"
        return EXIT_FAILED
    if args.detailed_exitcode and the_plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    job = _job(args, _settings(args))
    outputs = _outputs(args)
    stop = Stop()
    results: list[jobs.RunResult] = []

    async def run() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(stop.on_signals, group.cancel_scope)
            results.append(await runs.apply_once(job, outputs, metrics.Metrics(), stop.attach))
            group.cancel_scope.cancel()

    _run(run)
    if not results:  # a second signal cut the run short
        _err("aborted: no summary; the next apply repairs whatever was cut short")
        return EXIT_FAILED
    ok = runs.finish(results[0], outputs)
    return EXIT_OK if ok and not stop.requested else EXIT_FAILED


class Stop:
    """SIGTERM/SIGINT during apply: start no new work, let work in flight finish; twice: abort."""

    def __init__(self) -> None:
        self.requested = False
        self._engine: Engine | None = None

    def attach(self, engine: Engine) -> None:
        self._engine = engine
        if self.requested:
            engine.stopping.set()

    async def on_signals(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if self.requested:
                    _err("aborting: work in flight is cut short; the next apply repairs it")
                    scope.cancel()
                    return
                self.requested = True
                name = signal.Signals(signum).name
                _err(f"{name}: stopping: finishing work in flight, starting nothing new")
                if self._engine is not None:
                    self._engine.stopping.set()


def cmd_simulate(args: argparse.Namespace) -> int:
    from provisioner import simulator

    faults = simulator.FaultConfig(
        latency=args.latency,
        error_rate=args.error_rate,
        rate_limit=args.rate_limit,
        burst=args.burst,
        drop_after_create_rate=args.drop_after_create_rate,
        error_after_create_rate=args.error_after_create_rate,
        token_ttl=args.token_ttl,
    )
    servers = [
        (
            simulator.create_app(simulator.SimulatorState(faults=faults)),
            args.port,
            "simulator: serving on {} (login sim-admin/sim-admin-secret)",
        )
    ]
    if args.vault_port is not None:
        note = f"VAULT_TOKEN={simulator.VAULT_ROOT_TOKEN}, KV v2 mount secret"
        vault = simulator.create_vault_app(simulator.VaultState())
        servers.append((vault, args.vault_port, f"vault: serving on {{}} ({note})"))
    anyio.run(_serve, servers)
    return EXIT_OK


async def _serve(servers: list[tuple[Any, int, str]]) -> None:
    """Serve each app on its port until SIGTERM or SIGINT, then shut down gracefully."""
    from provisioner.simulator import serve_forever

    async with anyio.create_task_group() as group:
        for app, port, announce in servers:
            ready = functools.partial(_announce, announce)
            group.start_soon(
                functools.partial(serve_forever, app, "127.0.0.1", port, on_ready=ready)
            )
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                group.cancel_scope.cancel()
                break
    _err("simulator: stopped")


def _announce(template: str, url: str) -> None:
    _err(template.format(url))


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(manifest_schema(), indent=2))
    return EXIT_OK


# --- helpers -------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "concurrency", None) is not None:
        overrides["concurrency"] = args.concurrency
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid configuration: {problems}") from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _job(args: argparse.Namespace, settings: Settings) -> jobs.Job:
    sink_uri = getattr(args, "sink", None)
    cli_sinks = (parse_sink_uri(DEFAULT_SINK, sink_uri),) if sink_uri else ()
    return jobs.Job(
        paths=tuple(args.paths),
        settings=settings,
        cli_sinks=cli_sinks,
        prune=getattr(args, "prune", False),
        simulate=getattr(args, "simulate", False),
    )


def _run(func: Any) -> Any:
    """Run an async job; a lone error inside a task group surfaces as itself."""
    try:
        return anyio.run(func)
    except BaseExceptionGroup as group:
        raise runs.single_error(group) from None


def _err(message: str) -> None:
    print(redact(message), file=sys.stderr, flush=True)


# --- run: the scheduled reconciler, and the output flags apply shares -------------------------


def _add_run_command(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="apply on a schedule until SIGTERM/SIGINT; finishes in-flight work first"
    )
    _add_paths(run)
    _add_run_flags(run)
    run.add_argument(
        "--every", required=True, type=_interval, metavar="DURATION", help="e.g. 15m (s,m,h,d,w)"
    )
    run.add_argument(
        "--jitter", type=_duration, default=0.0, metavar="DURATION", help="add 0..DURATION per wait"
    )
    run.add_argument("--report", type=Path, metavar="FILE", help="the last cycle's JSON report")
    _add_output_flags(run)
    run.set_defaults(handler=cmd_run)


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-file", type=Path, metavar="PATH", help="Prometheus textfile (node-exporter)"
    )
    parser.add_argument("--pushgateway", metavar="URL", help="push metrics at the end of a run")
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress display, even on a terminal"
    )


def cmd_run(args: argparse.Namespace) -> int:
    job = _job(args, _settings(args))
    if job.simulate:  # one simulator for the whole run, so that cycles converge
        job = dataclasses.replace(job, simulator=jobs.Simulated.fresh())
    reconciler = Reconciler(job, _outputs(args))
    return int(_run(functools.partial(reconcile, reconciler, Cadence(args.every, args.jitter))))


def _outputs(args: argparse.Namespace) -> runs.Outputs:
    outputs = runs.Outputs(
        report=args.report,
        metrics_file=args.metrics_file,
        pushgateway=args.pushgateway,
        progress=not args.no_progress,
    )
    outputs.check()
    return outputs


def _duration(text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _interval(text: str) -> float:
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the interval must be longer than 0s")
    return seconds
