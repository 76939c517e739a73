"""`provisioner simulate`: serve the simulator (and Vault and Kubernetes stubs) on loopback until
a signal."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from provisioner.cli.arguments import Command
from provisioner.cli.common import EXIT_OK
from provisioner.cli.signals import stop_on_signals
from provisioner.cli.views import View
from provisioner.errors import UsageError
from provisioner.fs.atomic import describe, replace_file
from provisioner.reconcile.session import import_simulator

Ready = Callable[[str], None]  # told a server's base URL once it accepts connections


@dataclass(frozen=True)
class SimulateArgs:
    """`simulate`'s arguments: where to serve, and the faults to inject."""

    port: int
    vault_port: int | None
    kube_port: int | None
    kubeconfig: Path | None
    latency: float
    error_rate: float
    rate_limit: float | None
    burst: int
    drop_after_create_rate: float
    error_after_create_rate: float
    token_ttl: int
    slow_activation: float | Literal["never"] | None
    project_key_delete_failed_rate: float

    @classmethod
    def parse(cls, namespace: argparse.Namespace) -> SimulateArgs:
        return cls(
            port=namespace.port,
            vault_port=namespace.vault_port,
            kube_port=namespace.kube_port,
            kubeconfig=namespace.kubeconfig,
            latency=namespace.latency,
            error_rate=namespace.error_rate,
            rate_limit=namespace.rate_limit,
            burst=namespace.burst,
            drop_after_create_rate=namespace.drop_after_create_rate,
            error_after_create_rate=namespace.error_after_create_rate,
            token_ttl=namespace.token_ttl,
            slow_activation=namespace.slow_activation,
            project_key_delete_failed_rate=namespace.project_key_delete_failed_rate,
        )


def _activation(value: str) -> float | Literal["never"]:
    """`--slow-activation`: seconds (>= 0) or `never`."""
    if value == "never":
        return "never"
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or 'never', got {value!r}") from None
    if not seconds >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"expected seconds >= 0 or 'never', got {value!r}")
    return seconds


def _rate(value: str) -> float:
    """A share of calls, 0 to 1."""
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}") from None
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}")
    return rate


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--vault-port", type=int, metavar="Q", help="also serve a Vault stub (KV v2 at `secret`)"
    )
    parser.add_argument(
        "--kube-port",
        type=int,
        metavar="K",
        help="also serve a Kubernetes Secrets stub (needs --kubeconfig)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="write a kubeconfig (0600) that reaches the Kubernetes stub, for KUBECONFIG=FILE",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per call")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of calls -> 503")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests per second")
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--drop-after-create-rate", type=float, default=0.0)
    parser.add_argument("--error-after-create-rate", type=float, default=0.0)
    parser.add_argument("--token-ttl", type=int, default=3600, help="token lifetime, seconds")
    parser.add_argument(
        "--slow-activation",
        type=_activation,
        metavar="SECONDS|never",
        help="a project key asking for Kafka access stays `creating` this long (default 1)",
    )
    parser.add_argument(
        "--project-key-delete-failed-rate",
        type=_rate,
        default=0.0,
        metavar="R",
        help="share of project key deletions ending `delete_failed`",
    )


def simulate(args: SimulateArgs, view: View) -> int:
    if (args.kube_port is None) != (args.kubeconfig is None):
        raise UsageError(
            "--kube-port and --kubeconfig go together: the kubeconfig is how the provisioner "
            "(KUBECONFIG=FILE) reaches the Kubernetes stub"
        )
    simulator = import_simulator()
    faults = simulator.FaultConfig(
        latency=args.latency,
        error_rate=args.error_rate,
        rate_limit=args.rate_limit,
        burst=args.burst,
        drop_after_create_rate=args.drop_after_create_rate,
        error_after_create_rate=args.error_after_create_rate,
        token_ttl=args.token_ttl,
        slow_activation=args.slow_activation,
        project_key_delete_failed_rate=args.project_key_delete_failed_rate,
    )
    servers: list[tuple[Any, int, Ready]] = [
        (
            simulator.create_app(simulator.SimulatorState(faults=faults)),
            args.port,
            _announcer(view, "simulator: serving on {} (login sim-admin/sim-admin-secret)"),
        )
    ]
    if args.vault_port is not None:
        note = f"VAULT_TOKEN={simulator.VAULT_ROOT_TOKEN}, KV v2 mount secret"
        vault = simulator.create_vault_app(simulator.VaultState())
        announce = _announcer(view, f"vault: serving on {{}} ({note})")
        servers.append((vault, args.vault_port, announce))
    if args.kube_port is not None and args.kubeconfig is not None:
        # Every namespace exists: `--sink k8s:NS` works whatever NS the user picks.
        kube = simulator.create_kube_app(simulator.KubeState(every_namespace=True))
        ready = functools.partial(_kube_ready, view, simulator.kubeconfig, args.kubeconfig)
        servers.append((kube, args.kube_port, ready))
    anyio.run(_serve, simulator.serve_forever, servers, view)
    return EXIT_OK


async def _serve(serve_forever: Any, servers: list[tuple[Any, int, Ready]], view: View) -> None:
    """Serve each app on its port until SIGTERM or SIGINT, then shut down gracefully."""
    async with stop_on_signals() as stop, anyio.create_task_group() as group:
        for app, port, ready in servers:
            group.start_soon(
                functools.partial(serve_forever, app, "127.0.0.1", port, on_ready=ready)
            )
        await stop.requested.wait()
        group.cancel_scope.cancel()
    view.say("simulator: stopped")


def _announcer(view: View, template: str) -> Ready:
    return functools.partial(_announce, view, template)


def _announce(view: View, template: str, url: str) -> None:
    view.say(template.format(url))


def _kube_ready(view: View, kubeconfig: Callable[[str], str], path: Path, url: str) -> None:
    """Write the kubeconfig that reaches the stub at `url` (it exists once the stub is up)."""
    try:
        replace_file(path, kubeconfig(url).encode())
    except OSError as exc:
        raise UsageError(f"--kubeconfig {path}: cannot write it: {describe(exc)}") from None
    view.say(f"kubernetes: serving on {url} (KUBECONFIG={path}, every namespace)")


COMMAND = Command("simulate", add_flags, SimulateArgs.parse, simulate)
