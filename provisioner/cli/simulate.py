"""`provisioner simulate`: serve the simulator (and Vault and Kubernetes stubs) on loopback until
a signal."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from provisioner.cli.common import EXIT_OK, err
from provisioner.cli.signals import stop_on_signals
from provisioner.errors import UsageError
from provisioner.reconcile.session import import_simulator
from provisioner.sinks.atomic import describe, replace_file

Ready = Callable[[str], None]  # told a server's base URL once it accepts connections


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("simulate", help="serve the simulator on loopback")
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
    parser.set_defaults(handler=simulate)


def simulate(args: argparse.Namespace) -> int:
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
    )
    servers: list[tuple[Any, int, Ready]] = [
        (
            simulator.create_app(simulator.SimulatorState(faults=faults)),
            args.port,
            _announcer("simulator: serving on {} (login sim-admin/sim-admin-secret)"),
        )
    ]
    if args.vault_port is not None:
        note = f"VAULT_TOKEN={simulator.VAULT_ROOT_TOKEN}, KV v2 mount secret"
        vault = simulator.create_vault_app(simulator.VaultState())
        servers.append((vault, args.vault_port, _announcer(f"vault: serving on {{}} ({note})")))
    if args.kube_port is not None:
        # Every namespace exists: `--sink k8s:NS` works whatever NS the user picks.
        kube = simulator.create_kube_app(simulator.KubeState(every_namespace=True))
        ready = functools.partial(_kube_ready, simulator.kubeconfig, args.kubeconfig)
        servers.append((kube, args.kube_port, ready))
    anyio.run(_serve, simulator.serve_forever, servers)
    return EXIT_OK


async def _serve(serve_forever: Any, servers: list[tuple[Any, int, Ready]]) -> None:
    """Serve each app on its port until SIGTERM or SIGINT, then shut down gracefully."""
    async with stop_on_signals() as stop, anyio.create_task_group() as group:
        for app, port, ready in servers:
            group.start_soon(
                functools.partial(serve_forever, app, "127.0.0.1", port, on_ready=ready)
            )
        await stop.requested.wait()
        group.cancel_scope.cancel()
    err("simulator: stopped")


def _announcer(template: str) -> Ready:
    return functools.partial(_announce, template)


def _announce(template: str, url: str) -> None:
    err(template.format(url))


def _kube_ready(kubeconfig: Callable[[str], str], path: Path, url: str) -> None:
    """Write the kubeconfig that reaches the stub at `url` (it exists once the stub is up)."""
    try:
        replace_file(path, kubeconfig(url).encode())
    except OSError as exc:
        raise UsageError(f"--kubeconfig {path}: cannot write it: {describe(exc)}") from None
    err(f"kubernetes: serving on {url} (KUBECONFIG={path}, every namespace)")
