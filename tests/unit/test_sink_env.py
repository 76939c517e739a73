"""The `env` sink: dotenv merging, quoting both parsers read back, group commit, stdout."""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from dotenv import dotenv_values
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from provisioner.errors import SinkError
from provisioner.model import SinkRecord
from provisioner.sinks.base import Sink, SinkContext
from provisioner.sinks.env import EnvSink, EnvSinkOptions, quote_value, variable_names
from tests.support.shell import bash_value

CLIENT_VAR = "STREAMKAP_PAYMENTS_API_INGEST_CLIENT_ID"
SECRET_VAR = "STREAMKAP_PAYMENTS_API_INGEST_SECRET"
SECRET = "s3cr3t"
PRINTABLE_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E))


def record(
    service: str = "payments-api",
    credential: str = "ingest",
    client_id: str = "cid-1",
    secret: str = SECRET,
) -> SinkRecord:
    return SinkRecord(service, credential, client_id, SecretStr(secret))


def make_sink(cwd: Path, path: str = "secrets.env", **kwargs: Any) -> EnvSink:
    return EnvSink("dotenv", EnvSinkOptions(path=path), SinkContext(cwd=cwd), **kwargs)


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def read_both(path: Path, name: str) -> tuple[str | None, str]:
    return dotenv_values(path)[name], bash_value(path, name)


def test_env_sink_satisfies_the_sink_protocol(tmp_path: Path) -> None:
    assert isinstance(make_sink(tmp_path), Sink)
    assert isinstance(make_sink(tmp_path, "-"), Sink)


@pytest.mark.parametrize("target", ["./secrets.env", "-"])
def test_options_come_from_the_uri_target(target: str) -> None:
    assert EnvSinkOptions.model_validate(EnvSink.options_from_uri(target)).path == target


@pytest.mark.parametrize("options", [{"path": "x", "export": True}, {"path": ""}, {}])
def test_options_reject_unknown_keys_and_empty_path(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EnvSinkOptions.model_validate(options)


@pytest.mark.parametrize(
    ("service", "credential", "stem"),
    [
        ("payments-api", "ingest", "STREAMKAP_PAYMENTS_API_INGEST"),
        ("a.b", "c_d-9", "STREAMKAP_A_B_C_D_9"),
    ],
)
def test_variable_names_are_upper_case_with_other_characters_as_underscores(
    service: str, credential: str, stem: str
) -> None:
    assert variable_names(service, credential) == (f"{stem}_CLIENT_ID", f"{stem}_SECRET")


@pytest.mark.anyio
async def test_write_appends_both_variables_to_a_new_file(tmp_path: Path) -> None:
    await make_sink(tmp_path).write(record())
    assert (tmp_path / "secrets.env").read_text() == (
        f"{CLIENT_VAR}='cid-1'\n{SECRET_VAR}='s3cr3t'\n"
    )


@pytest.mark.anyio
async def test_env_file_is_0600_and_created_directories_0700(tmp_path: Path, umask: int) -> None:
    await make_sink(tmp_path, "conf/secrets.env").write(record())
    assert stat.S_IMODE((tmp_path / "conf" / "secrets.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "conf").stat().st_mode) == 0o700


@pytest.mark.anyio
async def test_an_existing_file_is_tightened_to_0600(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("OTHER=1\n")
    (tmp_path / "secrets.env").chmod(0o644)
    await make_sink(tmp_path).write(record())
    assert stat.S_IMODE((tmp_path / "secrets.env").stat().st_mode) == 0o600


@pytest.mark.anyio
async def test_merge_keeps_foreign_lines_and_replaces_ours_in_place(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text(
        "# database\nDB_URL=postgres://x\n\n"
        f'export {CLIENT_VAR}=old-id\n  {SECRET_VAR} = "old"  # rotated\n'
        "TAIL='kept'"
    )
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="new-id", secret="new"))
    await sink.write(record(service="billing", client_id="b-id", secret="b"))
    assert (tmp_path / "secrets.env").read_text() == (
        "# database\nDB_URL=postgres://x\n\n"
        f"export {CLIENT_VAR}='new-id'\n  {SECRET_VAR}='new'\n"
        "TAIL='kept'\n"
        "STREAMKAP_BILLING_INGEST_CLIENT_ID='b-id'\nSTREAMKAP_BILLING_INGEST_SECRET='b'\n"
    )


@pytest.mark.anyio
async def test_repeated_assignments_of_ours_collapse_into_the_first(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text(f"{SECRET_VAR}=a\nX=1\n{SECRET_VAR}=b\n")
    await make_sink(tmp_path).write(record())
    assert (tmp_path / "secrets.env").read_text() == (
        f"{SECRET_VAR}='s3cr3t'\nX=1\n{CLIENT_VAR}='cid-1'\n"
    )


@pytest.mark.anyio
async def test_a_foreign_multiline_value_is_kept_whole(tmp_path: Path) -> None:
    foreign = f'CERT="-----BEGIN-----\n{CLIENT_VAR}=not-a-variable\n-----END-----"\n'
    (tmp_path / "secrets.env").write_text(foreign)
    sink = make_sink(tmp_path)
    assert await sink.read("payments-api", "ingest") is None
    await sink.write(record())
    text = (tmp_path / "secrets.env").read_text()
    assert text == foreign + f"{CLIENT_VAR}='cid-1'\n{SECRET_VAR}='s3cr3t'\n"
    assert dotenv_values(tmp_path / "secrets.env")["CERT"] == (
        f"-----BEGIN-----\n{CLIENT_VAR}=not-a-variable\n-----END-----"
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    "line",
    [
        f"{CLIENT_VAR}=cid-9",
        f"export {CLIENT_VAR}='cid-9'",
        f'{CLIENT_VAR}="cid-9" # comment',
        f"{CLIENT_VAR}=cid-9   # comment",
    ],
)
async def test_read_understands_values_written_by_hand(tmp_path: Path, line: str) -> None:
    (tmp_path / "secrets.env").write_text(f"# hand-written\n{line}\n")
    assert await make_sink(tmp_path).read("payments-api", "ingest") == "cid-9"


@pytest.mark.anyio
async def test_read_answers_from_what_was_written(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    assert await sink.read("payments-api", "ingest") is None
    await sink.write(record(client_id="cid-5"))
    assert await sink.read("payments-api", "ingest") == "cid-5"
    assert await make_sink(tmp_path).read("payments-api", "ingest") == "cid-5"


@pytest.mark.anyio
async def test_delete_removes_both_lines_when_the_client_id_matches(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_text("A=1\n")
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="cid-1"))
    await sink.delete("payments-api", "ingest", "cid-1")
    assert (tmp_path / "secrets.env").read_text() == "A=1\n"
    assert await sink.read("payments-api", "ingest") is None


@pytest.mark.anyio
async def test_delete_keeps_lines_holding_another_client_id(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="newer"))
    writes = sink.file_writes
    await sink.delete("payments-api", "ingest", "cid-1")
    assert await make_sink(tmp_path).read("payments-api", "ingest") == "newer"
    assert sink.file_writes == writes


@pytest.mark.anyio
async def test_concurrent_writes_are_all_durable_with_few_file_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 concurrent writers share a handful of group commits; each returns once on disk."""
    (tmp_path / "secrets.env").write_text("# keep me\n")
    sink = make_sink(tmp_path)
    renames: list[object] = []
    replace = os.replace

    def counting_replace(*args: Any, **kwargs: Any) -> None:
        renames.append(args)
        replace(*args, **kwargs)

    monkeypatch.setattr(os, "replace", counting_replace)

    async def write_and_check(index: int) -> None:
        await sink.write(record(service=f"svc{index}", client_id=f"id-{index}"))
        on_disk = await anyio.Path(tmp_path / "secrets.env").read_text()
        assert f"STREAMKAP_SVC{index}_INGEST_CLIENT_ID='id-{index}'\n" in on_disk

    async with anyio.create_task_group() as group:
        for index in range(200):
            group.start_soon(write_and_check, index)
    values = dotenv_values(tmp_path / "secrets.env")
    assert len(values) == 400
    assert all(values[f"STREAMKAP_SVC{i}_INGEST_CLIENT_ID"] == f"id-{i}" for i in range(200))
    assert (tmp_path / "secrets.env").read_text().startswith("# keep me\n")
    assert 1 <= len(renames) == sink.file_writes <= 10


@pytest.mark.anyio
async def test_a_failed_commit_fails_its_writers_and_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(client_id="old"))

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(SinkError, match=r"cannot write secrets\.env: No space left on device"):
        await sink.write(record(client_id="lost", secret="lost-secret"))
    monkeypatch.undo()
    assert await sink.read("payments-api", "ingest") == "old"
    await sink.write(record(service="billing"))
    text = (tmp_path / "secrets.env").read_text()
    assert "lost" not in text
    assert "STREAMKAP_BILLING_INGEST_CLIENT_ID" in text
    assert names_in(tmp_path) == ["secrets.env"]


@pytest.mark.anyio
async def test_refuses_a_symlinked_env_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim.env"
    victim.write_text("A=1\n")
    (tmp_path / "secrets.env").symlink_to(victim)
    with pytest.raises(SinkError, match="symbolic link"):
        await make_sink(tmp_path).write(record())
    assert victim.read_text() == "A=1\n"


@pytest.mark.anyio
async def test_a_file_that_is_not_utf8_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "secrets.env").write_bytes(b"A=\xff\n")
    with pytest.raises(SinkError, match="not UTF-8"):
        await make_sink(tmp_path).write(record())
    assert (tmp_path / "secrets.env").read_bytes() == b"A=\xff\n"


@pytest.mark.anyio
async def test_names_that_collide_are_refused(tmp_path: Path) -> None:
    sink = make_sink(tmp_path)
    await sink.write(record(service="a-b", credential="c"))
    with pytest.raises(SinkError, match="a/b-c and a-b/c both map to STREAMKAP_A_B_C_CLIENT_ID"):
        await sink.write(record(service="a", credential="b-c"))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "secret",
    [
        "it's",
        "a\\\\b",
        "ends\\",
        "$5 `x`",
        '"q"',
        " #x ",
        "!",
        "",
        "a\\'b",
        "$X",
        "a\nb",
        "it's\n\n",
    ],
)
async def test_awkward_values_read_back_exactly_by_dotenv_and_bash(
    tmp_path: Path, secret: str
) -> None:
    await make_sink(tmp_path).write(record(secret=secret))
    assert read_both(tmp_path / "secrets.env", SECRET_VAR) == (secret, secret)


@pytest.mark.anyio
# A line feed is stored (a mapped `kafka_properties` holds four lines); a carriage return is not.
@pytest.mark.parametrize("secret", ["it's $5", "a\\\\$b", "${X}", "line\rbreak", "tab\there"])
async def test_unquotable_values_are_refused_before_writing(tmp_path: Path, secret: str) -> None:
    sink = make_sink(tmp_path)
    with pytest.raises(SinkError, match=r"cannot store the secret of payments-api/ingest") as err:
        await sink.write(record(secret=secret))
    assert secret not in str(err.value)
    assert not (tmp_path / "secrets.env").exists()


@settings(deadline=None, max_examples=150)
@given(value=PRINTABLE_ASCII)
@example(value="'\\$`\"")
@example(value="x\\")
@example(value="${HOME:-a}")
@example(value="two\nlines")
@example(value='it\'s\ntwo "lines"\n')
def test_quoted_values_read_back_exactly_or_are_refused(value: str) -> None:
    """Any printable ASCII value either round-trips through dotenv and bash, or is refused."""
    try:
        quoted = quote_value(value)
    except ValueError:
        assert set("'\\") & set(value) or "${" in value
        assert set("$`") & set(value)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "test.env"
        path.write_text(f"BEFORE=1\nVALUE={quoted}\nAFTER=2\n")
        assert read_both(path, "VALUE") == (value, value)
        assert dotenv_values(path)["AFTER"] == "2"


@pytest.mark.anyio
async def test_stdout_prints_both_lines_and_is_write_only(tmp_path: Path) -> None:
    out = io.StringIO()
    sink = make_sink(tmp_path, "-", stdout=out)
    await sink.write(record())
    assert out.getvalue() == f"{CLIENT_VAR}='cid-1'\n{SECRET_VAR}='s3cr3t'\n"
    assert sink.readable is False
    assert await sink.read("payments-api", "ingest") is None
    await sink.delete("payments-api", "ingest", "cid-1")
    assert names_in(tmp_path) == []


@pytest.mark.anyio
async def test_stdout_defaults_to_sys_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await make_sink(tmp_path, "-").write(record())
    assert capsys.readouterr().out == f"{CLIENT_VAR}='cid-1'\n{SECRET_VAR}='s3cr3t'\n"


class ChunkyStream(io.StringIO):
    """A stream that hands each write over in single characters, as a pipe might."""

    def write(self, text: str) -> int:
        for char in text:
            super().write(char)
        return len(text)


@pytest.mark.anyio
async def test_stdout_lines_of_concurrent_writes_never_interleave(tmp_path: Path) -> None:
    out = ChunkyStream()
    sink = make_sink(tmp_path, "-", stdout=out)
    async with anyio.create_task_group() as group:
        for index in range(100):
            group.start_soon(sink.write, record(service=f"s{index}", client_id=f"id{index}"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 200
    for client_line, secret_line in zip(lines[::2], lines[1::2], strict=True):
        stem = client_line.split("_CLIENT_ID=")[0]
        assert secret_line == f"{stem}_SECRET='s3cr3t'"


@pytest.mark.anyio
async def test_stdout_failure_is_a_sink_error(tmp_path: Path) -> None:
    out = io.StringIO()
    out.close()
    with pytest.raises(SinkError, match="cannot write to standard output"):
        await make_sink(tmp_path, "-", stdout=out).write(record())
