"""`provisioner simulate`: serve the simulator (and a Vault stub) on loopback until a signal."""

from __future__ import annotations

import argparse
import functools
from typing import Any

import anyio

from provisioner.cli.common import EXIT_OK, err
from provisioner.cli.signals import stop_on_signals
from provisioner.reconcile.session import import_simulator


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("simulate", help="serve the simulator on loopback")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--vault-port", type=int, metavar="Q", help="also serve a Vault stub (KV v2 at `secret`)"
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
    anyio.run(_serve, simulator.serve_forever, servers)
    return EXIT_OK


async def _serve(serve_forever: Any, servers: list[tuple[Any, int, str]]) -> None:
    """Serve each app on its port until SIGTERM or SIGINT, then shut down gracefully."""
    async with stop_on_signals() as stop, anyio.create_task_group() as group:
        for app, port, announce in servers:
            ready = functools.partial(_announce, announce)
            group.start_soon(
                functools.partial(serve_forever, app, "127.0.0.1", port, on_ready=ready)
            )
        await stop.requested.wait()
        group.cancel_scope.cancel()
    err("simulator: stopped")


def _announce(template: str, url: str) -> None:
    err(template.format(url))
