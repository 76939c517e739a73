"""`python -m bench [--quick] [--only NAME,...] [--check]`: run the scenarios, print one table."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence

from bench.scenarios import QUICK, SCENARIOS, Row, Runs


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    runs = QUICK if args.quick else Runs()
    names = args.only.split(",") if args.only else list(SCENARIOS)
    started, load = time.perf_counter(), os.getloadavg()[0]
    rows: list[Row] = []
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        rows += SCENARIOS[name](runs)
    print(_machine(load, time.perf_counter() - started, args.quick))
    print()
    print(render(rows))
    missed = any(row.met is False for row in rows)
    return 1 if args.check and missed else 0


def render(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| scenario | figure | provisioner | naive script | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        cells = (row.scenario, row.figure, row.provisioner, row.naive, row.goal, met)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _machine(load: float, seconds: float, quick: bool) -> str:
    cpu = _cpu_model()
    mode = "quick" if quick else "full"
    return (
        f"Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average {load:.2f} at the start; "
        f"{mode} run, {seconds:.0f} s; figures are medians of runs, start-up excluded."
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs (about 90 s)")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    return parser


if __name__ == "__main__":
    sys.exit(main())
