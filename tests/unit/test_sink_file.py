"""The `file` sink on real files: layout, modes, atomicity, symlinks, read-back and undo."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr, ValidationError

from provisioner.errors import SinkError
from provisioner.model import SinkRecord
from provisioner.sinks.base import Sink, SinkContext
from provisioner.sinks.file import FileSink, FileSinkOptions

SECRET = "s3cr3t-Do-Not-Print"


def _permissions_enforced() -> bool:
    """False when we may read a mode-0 file anyway (root, CAP_DAC_OVERRIDE)."""
    with tempfile.TemporaryDirectory() as directory:
        probe = Path(directory) / "probe"
        probe.write_text("x")
        probe.chmod(0)
        try:
            probe.read_text()
        except PermissionError:
            return True
        return False


needs_permissions = pytest.mark.skipif(
    not _permissions_enforced(),
    reason="file modes do not bind this user (root); tests/e2e/test_privileges.py reruns these "
    "tests with that privilege dropped",
)


def record(
    service: str = "payments-api", credential: str = "ingest", client_id: str = "cid-1"
) -> SinkRecord:
    return SinkRecord(
        service=service,
        credential=credential,
        client_id=client_id,
        secret=SecretStr(SECRET),
        description="Payments ingestion",
        role_ids=("role-1",),
        permission_ids=("perm-1", "perm-2"),
        service_id="svc-123",
        created_at="2024-05-01T12:00:00Z",
    )


def make_sink(cwd: Path, path: str = "secrets") -> FileSink:
    return FileSink("local", FileSinkOptions(path=path), SinkContext(cwd=cwd))


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


async def write_together(sink: FileSink, keys: list[tuple[str, str]]) -> dict[str, str]:
    """Write a record for each (service, credential) at once; the failures by key."""
    failures: dict[str, str] = {}

    async def write(service: str, credential: str) -> None:
        try:
            await sink.write(record(service=service, credential=credential))
        except SinkError as exc:
            failures[f"{service}/{credential}"] = str(exc)

    async with anyio.create_task_group() as group:
        for service, credential in keys:
            group.start_soon(write, service, credential)
    return failures


def symlinked_service_dir(tmp_path: Path, service: str) -> Path:
    """Make secrets/<service> a symbolic link to a directory elsewhere; return that directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / service).symlink_to(elsewhere)
    return elsewhere


def fail_with(code: int) -> Any:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


def test_file_sink_satisfies_the_sink_protocol(tmp_path: Path) -> None:
    assert isinstance(make_sink(tmp_path), Sink)


def test_options_come_from_the_uri_target() -> None:
    options = FileSinkOptions.model_validate(FileSink.options_from_uri("./secrets"))
    assert options.path == "./secrets"


@pytest.mark.parametrize("options", [{"path": "x", "mode": 384}, {"path": ""}, {}])
def test_options_reject_unknown_keys_and_empty_path(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FileSinkOptions.model_validate(options)


@pytest.mark.anyio
async def test_write_stores_the_record_document_at_service_credential_json(
    tmp_path: Path,
) -> None:
    await make_sink(tmp_path).write(record())
    assert load(tmp_path / "secrets" / "payments-api" / "ingest.json") == {
        "client_id": "cid-1",
        "secret": SECRET,
        "service": "payments-api",
        "credential": "ingest",
        "description": "Payments ingestion",
        "role_ids": ["role-1"],
        "permission_ids": ["perm-1", "perm-2"],
        "service_id": "svc-123",
        "created_at": "2024-05-01T12:00:00Z",
    }


@pytest.mark.anyio
async def test_absolute_path_ignores_the_context_cwd(tmp_path: Path) -> None:
    await make_sink(tmp_path / "elsewhere", path=str(tmp_path / "abs")).write(record())
    assert load(tmp_path / "abs" / "payments-api" / "ingest.json")["client_id"] == "cid-1"


@pytest.mark.anyio
async def test_files_are_0600_and_created_directories_0700(tmp_path: Path, umask: int) -> None:
    await make_sink(tmp_path, "deep/secrets").write(record())
    root = tmp_path / "deep"
    assert mode(root / "secrets" / "payments-api" / "ingest.json") == 0o600
    for directory in (root, root / "secrets", root / "secrets" / "payments-api"):
        assert mode(directory) == 0o700


@pytest.mark.anyio
async def test_an_existing_root_directory_keeps_its_mode(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir(mode=0o755)
    (tmp_path / "secrets").chmod(0o755)
    await make_sink(tmp_path).write(record())
    assert mode(tmp_path / "secrets") == 0o755
    assert mode(tmp_path / "secrets" / "payments-api") == 0o700


@pytest.mark.anyio
async def test_rewrite_replaces_the_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="old"))
    await sink.write(record(client_id="new"))
    service_dir = tmp_path / "secrets" / "payments-api"
    assert load(service_dir / "ingest.json")["client_id"] == "new"
    assert sorted(p.name for p in service_dir.iterdir()) == ["ingest.json"]


@pytest.mark.anyio
@pytest.mark.parametrize("step", ["replace", "fsync"])
async def test_failed_write_keeps_the_old_file_and_removes_its_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="old"))
    monkeypatch.setattr(os, step, fail_with(errno.ENOSPC))
    with pytest.raises(SinkError) as caught:
        await sink.write(record(client_id="new"))
    monkeypatch.undo()
    service_dir = tmp_path / "secrets" / "payments-api"
    assert load(service_dir / "ingest.json")["client_id"] == "old"
    assert leftovers(service_dir) == []
    assert str(caught.value) == (
        "sink 'local': cannot write secrets/payments-api/ingest.json: No space left on device"
    )


@pytest.mark.anyio
async def test_errors_never_contain_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "replace", fail_with(errno.EACCES))
    with pytest.raises(SinkError) as caught:
        await make_sink(tmp_path).write(record())
    assert SECRET not in str(caught.value)
    assert "Permission denied" in str(caught.value)


@needs_permissions
@pytest.mark.anyio
async def test_unwritable_directory_is_a_sink_error(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir(mode=0o500)
    with pytest.raises(SinkError, match=r"cannot write secrets/payments-api/ingest\.json: Perm"):
        await make_sink(tmp_path).write(record())


@pytest.mark.anyio
async def test_refuses_to_write_through_a_symlinked_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    service_dir = tmp_path / "secrets" / "payments-api"
    service_dir.mkdir(parents=True)
    (service_dir / "ingest.json").symlink_to(victim)
    with pytest.raises(SinkError, match="symbolic link"):
        await make_sink(tmp_path).write(record())
    assert victim.read_text() == "untouched"
    assert (service_dir / "ingest.json").is_symlink()
    assert leftovers(service_dir) == []


@pytest.mark.anyio
async def test_refuses_to_write_through_a_symlinked_service_directory(tmp_path: Path) -> None:
    elsewhere = symlinked_service_dir(tmp_path, "payments-api")
    with pytest.raises(SinkError, match="symbolic link"):
        await make_sink(tmp_path).write(record())
    assert list(elsewhere.iterdir()) == []


@pytest.mark.anyio
async def test_read_returns_the_stored_client_id(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="cid-7"))
    assert await sink.read("payments-api", "ingest") == "cid-7"


@pytest.mark.anyio
async def test_read_of_a_missing_record_is_none(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    assert await sink.read("payments-api", "ingest") is None
    await sink.write(record(credential="other"))
    assert await sink.read("payments-api", "ingest") is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content", ["{not json", "[]", '{"secret": "x"}', '{"client_id": 42}', "", "\xff"]
)
async def test_read_of_a_corrupt_file_is_none(tmp_path: Path, content: str) -> None:
    service_dir = tmp_path / "secrets" / "payments-api"
    service_dir.mkdir(parents=True)
    (service_dir / "ingest.json").write_text(content, encoding="latin-1")
    assert await make_sink(tmp_path).read("payments-api", "ingest") is None


@needs_permissions
@pytest.mark.anyio
async def test_read_of_an_unreadable_file_is_none(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record())
    (tmp_path / "secrets" / "payments-api" / "ingest.json").chmod(0)
    assert await sink.read("payments-api", "ingest") is None


@needs_permissions
@pytest.mark.anyio
async def test_read_of_an_unreadable_directory_is_a_sink_error(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record())
    (tmp_path / "secrets" / "payments-api").chmod(0)
    try:
        with pytest.raises(SinkError, match="Permission denied"):
            await sink.read("payments-api", "ingest")
    finally:
        (tmp_path / "secrets" / "payments-api").chmod(0o700)


@pytest.mark.anyio
async def test_read_where_the_service_directory_is_a_file_is_a_sink_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "payments-api").write_text("not a directory")
    with pytest.raises(SinkError, match=r"cannot read secrets/payments-api/ingest\.json"):
        await make_sink(tmp_path).read("payments-api", "ingest")


@pytest.mark.anyio
async def test_read_refuses_a_symlinked_file(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(credential="real"))
    service_dir = tmp_path / "secrets" / "payments-api"
    (service_dir / "ingest.json").symlink_to(service_dir / "real.json")
    with pytest.raises(SinkError, match="symbolic link"):
        await sink.read("payments-api", "ingest")


@pytest.mark.anyio
async def test_delete_removes_the_file_holding_that_client_id(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="cid-1"))
    await sink.delete("payments-api", "ingest", "cid-1")
    assert not (tmp_path / "secrets" / "payments-api" / "ingest.json").exists()
    assert await sink.read("payments-api", "ingest") is None


@pytest.mark.anyio
async def test_delete_keeps_a_file_holding_another_client_id(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="newer"))
    await sink.delete("payments-api", "ingest", "cid-1")
    assert await sink.read("payments-api", "ingest") == "newer"


@pytest.mark.anyio
async def test_delete_of_a_missing_record_does_nothing(tmp_path: Path) -> None:
    await make_sink(tmp_path).delete("payments-api", "ingest", "cid-1")
    assert not (tmp_path / "secrets").exists()


@pytest.mark.anyio
async def test_concurrent_writes_into_a_new_service_directory_all_land(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    async with anyio.create_task_group() as group:
        for index in range(50):
            group.start_soon(sink.write, record(credential=f"c{index}", client_id=f"id{index}"))
    for index in range(50):
        assert await sink.read("payments-api", f"c{index}") == f"id{index}"
    assert leftovers(tmp_path / "secrets" / "payments-api") == []


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["..", ".", "", "a/b"])
async def test_names_that_escape_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SinkError, match="invalid name"):
        await make_sink(tmp_path).write(record(credential=name))


@pytest.mark.anyio
async def test_writes_arriving_together_share_batches_and_directory_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 writes over 10 service directories: few batches, and each syncs a directory once."""
    sink = make_sink(tmp_path)
    (tmp_path / "secrets").mkdir()
    synced_dirs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced_dirs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    async with anyio.create_task_group() as group:
        for index in range(100):
            rec = record(
                service=f"svc-{index % 10}", credential=f"c{index}", client_id=f"id{index}"
            )
            group.start_soon(sink.write, rec)
    batches = sink._writes.batches
    assert 1 <= batches < 100
    new_dirs = 10  # creating a directory syncs its parent once
    assert len(synced_dirs) <= batches * 10 + new_dirs
    assert len(synced_dirs) < 100  # one per write would be 100, plus the new directories
    for index in range(100):
        path = tmp_path / "secrets" / f"svc-{index % 10}" / f"c{index}.json"
        assert load(path)["client_id"] == f"id{index}"
        assert mode(path) == 0o600


@pytest.mark.anyio
async def test_reads_arriving_together_share_batches(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    for index in range(0, 60, 2):  # every other credential exists
        await sink.write(
            record(service=f"svc-{index % 3}", credential=f"c{index}", client_id=f"id{index}")
        )
    found: dict[int, str | None] = {}

    async def read(index: int) -> None:
        found[index] = await sink.read(f"svc-{index % 3}", f"c{index}")

    before = sink._reads.batches
    async with anyio.create_task_group() as group:
        for index in range(60):
            group.start_soon(read, index)
    assert found == {i: f"id{i}" if i % 2 == 0 else None for i in range(60)}
    assert sink._reads.batches - before < 60


@pytest.mark.anyio
async def test_one_failing_write_in_a_batch_fails_alone(tmp_path: Path) -> None:
    symlinked_service_dir(tmp_path, "bad")
    sink = make_sink(tmp_path)
    failures = await write_together(
        sink, [("bad" if i == 7 else "good", f"c{i}") for i in range(20)]
    )
    assert sink._writes.batches < 20  # so the failure shared a batch with successes
    assert list(failures) == ["bad/c7"]
    assert "symbolic link" in failures["bad/c7"]
    assert len(list((tmp_path / "secrets" / "good").glob("*.json"))) == 19


@pytest.mark.anyio
async def test_a_failed_directory_fsync_fails_every_write_renamed_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until its directory is synced a rename is not durable: those writers must not succeed."""
    sink = make_sink(tmp_path)
    await sink.write(record(service="flaky", credential="first"))  # the directories exist
    await sink.write(record(service="steady", credential="first"))
    flaky = os.stat(tmp_path / "secrets" / "flaky")
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == (flaky.st_dev, flaky.st_ino):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    keys = [("flaky" if i % 2 else "steady", f"c{i}") for i in range(10)]
    failures = await write_together(sink, keys)
    assert sorted(failures) == [f"flaky/c{i}" for i in (1, 3, 5, 7, 9)]
    assert all("Input/output error" in failure for failure in failures.values())
