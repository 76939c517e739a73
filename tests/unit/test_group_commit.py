"""Group commit: callers' work done in shared batches, each caller told its own outcome."""

from __future__ import annotations

import anyio
import pytest

from provisioner.sinks._group import GroupCommit, Pending


class Recorder:
    """A batch runner that records what ran, and can be held at the start of a batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.hold = False

    async def run(self, batch: list[Pending[str, int]]) -> None:
        self.started.set()
        if self.hold:
            await self.release.wait()
        self.batches.append([pending.work for pending in batch])
        for pending in batch:
            if pending.work.startswith("bad"):
                pending.failure = f"cannot do {pending.work}"
            else:
                pending.result = len(pending.work)


@pytest.mark.anyio
async def test_work_queued_during_a_batch_goes_together_in_the_next() -> None:
    runner = Recorder()
    runner.hold = True
    group: GroupCommit[str, int] = GroupCommit(runner.run, interrupted="interrupted")
    done: dict[str, Pending[str, int]] = {}

    async def submit(work: str) -> None:
        done[work] = await group.submit(work)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(submit, "first")
        await runner.started.wait()
        for work in ("a", "bad-b", "cc"):
            tasks.start_soon(submit, work)
        await anyio.wait_all_tasks_blocked()
        runner.release.set()
    assert runner.batches == [["first"], ["a", "bad-b", "cc"]]
    assert {w: (p.result, p.failure) for w, p in done.items()} == {
        "first": (5, None),
        "a": (1, None),
        "bad-b": (None, "cannot do bad-b"),
        "cc": (2, None),
    }


async def hold_lock(group: GroupCommit[str, int], release: anyio.Event) -> None:
    async with group.lock:
        await release.wait()


@pytest.mark.anyio
async def test_a_cancelled_caller_does_not_fail_the_batch_it_leads() -> None:
    """The leader's cancellation waits for its batch, whose other work succeeds."""
    runner = Recorder()
    runner.hold = True
    group: GroupCommit[str, int] = GroupCommit(runner.run, interrupted="interrupted")
    unlock = anyio.Event()
    leader = anyio.CancelScope()
    other: list[Pending[str, int]] = []

    async def lead() -> None:
        with leader:
            await group.submit("leader")

    async def follow() -> None:
        other.append(await group.submit("other"))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold_lock, group, unlock)  # so that both queue for one batch
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(lead)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(follow)
        await anyio.wait_all_tasks_blocked()
        unlock.set()
        await runner.started.wait()
        leader.cancel()
        await anyio.wait_all_tasks_blocked()
        runner.release.set()
    assert runner.batches == [["leader", "other"]]
    assert leader.cancel_called
    assert other[0].failure is None
    assert other[0].result == 5


@pytest.mark.anyio
async def test_a_caller_cancelled_while_queued_is_never_run() -> None:
    runner = Recorder()
    group: GroupCommit[str, int] = GroupCommit(runner.run, interrupted="interrupted")
    unlock = anyio.Event()
    queued = anyio.CancelScope()

    async def submit() -> None:
        with queued:
            await group.submit("never")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold_lock, group, unlock)
        await anyio.wait_all_tasks_blocked()
        tasks.start_soon(submit)
        await anyio.wait_all_tasks_blocked()
        queued.cancel()
        await anyio.wait_all_tasks_blocked()
        unlock.set()
    await group.submit("later")
    assert runner.batches == [["later"]]


@pytest.mark.anyio
async def test_a_batch_that_raises_fails_all_its_work() -> None:
    async def broken(batch: list[Pending[str, int]]) -> None:
        raise RuntimeError("bug")

    group: GroupCommit[str, int] = GroupCommit(broken, interrupted="the batch was interrupted")
    with pytest.raises(RuntimeError):
        await group.submit("x")
