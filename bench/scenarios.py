"""The rows of the benchmark table: what each scenario measures and the goal it is held to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median

from bench import measure
from bench import startup as starting
from bench.measure import Run
from bench.simserver import Faults

MIB = 1024**2


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    scenario: str
    figure: str
    provisioner: str
    naive: str
    goal: str
    met: bool | None  # None: no goal, for information


@dataclass(frozen=True)
class Runs:
    """How many times each scenario is measured (the figures are medians)."""

    latency: int = 5
    rate: int = 3
    cpu: int = 5
    scale: int = 5
    startup: int = 5
    project_keys: int = 3  # each run applies twice: the creates, then the converged re-run
    startup_rounds: int = 10  # the start-up ratios: fastest of this many rounds


QUICK = Runs(latency=2, rate=1, cpu=2, scale=2, startup=3, project_keys=1, startup_rounds=5)


def latency_bound(runs: Runs) -> list[Row]:
    """600 creates at 100 ms each, 40 at a time: wall time against the ideal."""
    count, concurrency, latency = 600, 40, 0.1
    results = measure.side_by_side(Faults(latency=latency), count, concurrency, runs.latency)
    ideal = count / concurrency * latency
    mine, naive = (_median(results[side], lambda r: r.wall) / ideal for side in measure.SIDES)
    goal = "<= 1.3x, and below naive"
    scenario = f"latency-bound: {count} creates, {latency:.1f} s each, {concurrency} at a time"
    return [Row(scenario, "wall / ideal", _x(mine), _x(naive), goal, mine <= 1.3 and mine < naive)]


def rate_limited(runs: Runs) -> list[Row]:
    """1000 creates against an API allowing 100 requests a second (burst 10)."""
    count, concurrency, rate = 1000, 40, 100.0
    faults = Faults(latency=0.05, rate_limit=rate, burst=10)
    results = measure.side_by_side(faults, count, concurrency, runs.rate)
    ideal = count / rate
    mine, naive = (_median(results[side], lambda r: r.wall) / ideal for side in measure.SIDES)
    share_mine, share_naive = (_refused(results[side]) for side in measure.SIDES)
    scenario = f"rate-limited: {count} creates, API allows {rate:.0f}/s (burst 10), 50 ms each"
    return [
        Row(scenario, "wall / ideal", _x(mine), _x(naive), "<= 1.2x", mine <= 1.2),
        Row(
            scenario, "429 share", _pct(share_mine), _pct(share_naive), "<= 5%", share_mine <= 0.05
        ),
    ]


def project_keys(runs: Runs) -> list[Row]:
    """1000 project keys at 100 ms a request, 40 at a time: the first apply (a create and its
    read-back until `active` per key) and the converged re-run (the listing and a detail read per
    key, no write), each wall time against the ideal of its requests at that concurrency."""
    count, concurrency, latency = 1000, 40, 0.1
    faults = Faults(latency=latency, slow_activation=0.0)  # active when first read back
    results = [measure.project_keys(faults, count, concurrency) for _ in range(runs.project_keys)]
    # The work beyond the setup the latency-bound row leaves out too (log in, then the listings):
    # a create and a detail read per key, then a detail read per key.
    per_request = latency / concurrency  # at full concurrency
    ideals = {"first": 2 * count * per_request, "converged": count * per_request}
    what = {
        "first": "first apply of {n} (a create + its read-back each)",
        "converged": "converged re-run of {n} (listing + a detail read each, no write)",
    }
    rows = []
    for run in ("first", "converged"):
        ratio = median(result[run].wall for result in results) / ideals[run]
        pace = f"{latency:.1f} s each, {concurrency} at a time"
        scenario = f"project keys: {what[run].format(n=count)}, {pace}"
        rows.append(Row(scenario, "wall / ideal", _x(ratio), "", "<= 1.3x", ratio <= 1.3))
        counted = _requests(results[0][run].requests)
        rows.append(Row(scenario, "requests sent", counted, "", "", None))
    return rows + _activating_keys(runs, count, concurrency, latency)


def _activating_keys(runs: Runs, count: int, concurrency: int, latency: float) -> list[Row]:
    """The first apply again with each key `creating` for 1 s (the simulator's default), read
    back until `active`: the waits hold no connection, so it stays bound by its requests. Ideal:
    the requests it sent beyond the setup at full concurrency, plus one wait (the last key's)."""
    activation = 1.0
    faults = Faults(latency=latency, slow_activation=activation)
    results = [measure.project_keys(faults, count, concurrency) for _ in range(runs.project_keys)]
    first = [result["first"] for result in results]
    work = sum(n for call, n in first[0].requests.items() if "/project-keys" in call)
    ideal = work * latency / concurrency + activation
    ratio = median(run.wall for run in first) / ideal
    scenario = (
        f"project keys: first apply of {count}, each `creating` for {activation:.0f} s, "
        f"{latency:.1f} s a request, {concurrency} at a time"
    )
    return [
        Row(scenario, "wall / ideal", _x(ratio), "", "<= 1.3x", ratio <= 1.3),
        Row(scenario, "requests sent", _requests(first[0].requests), "", "", None),
    ]


def cpu(runs: Runs) -> list[Row]:
    """User+system CPU per credential against an API that answers at once."""
    count, concurrency = 2000, 40
    results = measure.side_by_side(Faults(), count, concurrency, runs.cpu)
    mine, naive = (_median(results[side], lambda r: r.cpu) / count for side in measure.SIDES)
    ratio = mine / naive
    scenario = f"cpu: {count} creates, instant API, {concurrency} at a time"
    shown = f"{mine * 1000:.2f} ms ({ratio:.2f}x naive)"
    return [Row(scenario, "CPU / credential", shown, _ms(naive), "<= 0.6x naive", ratio <= 0.6)]


def scale(runs: Runs) -> list[Row]:
    """Validate + plan 10k and 100k credentials (ten and a hundred files) against as many
    observed, the listing's JSON included, in memory."""
    # Pairs measured back to back, so a busier machine weighs on both sizes of each ratio.
    pairs = [(measure.scale(10_000), measure.scale(100_000)) for _ in range(runs.scale)]
    small, large = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    seconds = [median(r["cpu"] for r in results) for results in (small, large)]
    peaks = [max(r["peak_rss"] for r in results) for results in (small, large)]
    ratio = median(big["cpu"] / little["cpu"] for little, big in pairs)
    rows = [
        Row(f"scale: validate + plan {n}", "CPU s; peak RSS", f"{s:.2f} s; {_mib(p)}", "", "", None)
        for n, s, p in zip(("10k (10 files)", "100k (100 files)"), seconds, peaks, strict=True)
    ]
    goal = "<= 11x, and 100k within 300 MiB"
    met = ratio <= 11 and peaks[1] <= 300 * MIB
    rows.append(Row("scale: 100k against 10k", "time ratio", _x(ratio), "", goal, met))
    return rows


def startup(runs: Runs) -> list[Row]:
    """Start-up: each command against its floor, side by side; then the imports and plugins a
    run loads before its work (left out of every figure above)."""
    best = starting.startup(runs.startup_rounds)
    version, validate = best["version"] / best["python"], best["validate"] / best["floor"]
    rows = [
        Row(
            "start-up: `provisioner --version`",
            "wall / `python -c pass` (fastest)",
            f"{_x(version)} ({_ms(best['version'])})",
            _ms(best["python"]),
            "<= 5x",
            version <= 5,
        ),
        Row(
            "start-up: `provisioner validate`, one credential",
            "wall / its libraries alone (fastest)",
            f"{_x(validate)} ({_ms(best['validate'])})",
            _ms(best["floor"]),
            "<= 1.25x",
            validate <= 1.25,
        ),
    ]
    code = "from bench.provision import warm_up; import provisioner.cli; warm_up()"
    mine = median(measure.startup(code) for _ in range(runs.startup))
    code = "from bench.naive import warm_up; warm_up()"
    naive = median(measure.startup(code) for _ in range(runs.startup))
    scenario = "start-up: imports, plugins (excluded above)"
    rows.append(Row(scenario, "wall", f"{mine:.2f} s", f"{naive:.2f} s", "", None))
    return rows


def limits(runs: Runs) -> list[Row]:
    """100k credentials as people write them, in a hundred files: the default limits admit them."""
    code, wall, peak = starting.validate_at_scale(100_000, 100)
    scenario = "limits: validate 100k credentials in 100 files, default limits"
    shown = f"{'accepted' if code == 0 else f'exit {code}'}; {wall:.1f} s; {_mib(peak)}"
    return [Row(scenario, "outcome; wall; peak RSS", shown, "", "accepted", code == 0)]


SCENARIOS: dict[str, Callable[[Runs], list[Row]]] = {
    "latency": latency_bound,
    "rate": rate_limited,
    "project-keys": project_keys,
    "cpu": cpu,
    "scale": scale,
    "startup": startup,
    "limits": limits,
}


def _median(runs: Sequence[Run], figure: Callable[[Run], float]) -> float:
    return median(figure(run) for run in runs)


def _refused(runs: Sequence[Run]) -> float:
    return sum(run.refused for run in runs) / sum(run.calls for run in runs)


def _requests(counted: dict[str, int]) -> str:
    """Requests by method and route, the most frequent first."""
    by_count = sorted(counted.items(), key=lambda item: (-item[1], item[0]))
    return "; ".join(f"{call}: {n}" for call, n in by_count)


def _x(value: float) -> str:
    return f"{value:.2f}x"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _mib(size: float) -> str:
    return f"{size / 1024**2:.0f} MiB"
