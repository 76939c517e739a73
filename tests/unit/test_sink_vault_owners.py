"""Issue 21, "owners in sinks": the vault sink records a run's owner in the key's custom
metadata, and never overwrites a key another owner recorded (or, for a non-default owner, a key
written before owners were recorded: the default owner's)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from provisioner.errors import SinkError
from provisioner.model import SinkRecord
from provisioner.simulator import (
    VAULT_ROOT_TOKEN,
    SimulatorState,
    VaultState,
    load_saved,
    save_state,
)
from provisioner.sinks.base import SinkContext
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from tests.support.factories import no_sleep
from tests.support.vault_support import ServedVault

pytestmark = pytest.mark.anyio

KEY = ("", "secret", "streamkap/payments-api/ingest")
OWNER = "streamkap-provisioner-owner"
MakeSink = Callable[..., VaultSink]


@pytest.fixture
async def make_sink(vault: ServedVault) -> AsyncIterator[MakeSink]:
    opened: list[VaultSink] = []

    def make(owner: str = "default", token: str = VAULT_ROOT_TOKEN) -> VaultSink:
        options = VaultSinkOptions(address=vault.url, prefix="streamkap")
        context = SinkContext(Path(), {"VAULT_TOKEN": token}, max_attempts=2, owner=owner)
        sink = VaultSink("vault", options, context, sleep=no_sleep)
        opened.append(sink)
        return sink

    yield make
    for sink in opened:
        await sink.aclose()


def record(client_id: str) -> SinkRecord:
    return SinkRecord("payments-api", "ingest", client_id, SecretStr(f"secret-of-{client_id}"))


async def test_another_owners_key_is_never_overwritten(
    vault: ServedVault, make_sink: MakeSink
) -> None:
    theirs, ours = make_sink("team-a"), make_sink("team-b")
    await theirs.write(record("cid-a"))
    assert vault.state.custom_metadata(KEY) == {OWNER: "team-a"}
    metadata = vault.hvac().secrets.kv.v2.read_secret_metadata("streamkap/payments-api/ingest")
    assert metadata["data"]["custom_metadata"] == {OWNER: "team-a"}  # as hvac reads it
    with pytest.raises(SinkError, match="belongs to owner 'team-a', not 'team-b'"):
        await ours.read("payments-api", "ingest")
    with pytest.raises(SinkError, match="belongs to owner 'team-a', not 'team-b'"):
        await ours.write(record("cid-b"))
    with pytest.raises(SinkError, match="belongs to owner 'team-a'"):
        await ours.delete("payments-api", "ingest", "cid-a")
    assert vault.state.secret(KEY[2])["client_id"] == "cid-a"


async def test_the_default_owner_writes_no_metadata_and_keeps_old_keys(
    vault: ServedVault, make_sink: MakeSink
) -> None:
    vault.state.write(KEY, record("cid-old").to_document(), None)  # as the previous version did
    default = make_sink()
    assert await default.read("payments-api", "ingest") == "cid-old"
    await default.write(record("cid-new"))
    assert vault.state.calls(path_prefix="/v1/secret/metadata") == []  # no new capability needed
    assert vault.state.custom_metadata(KEY) == {}
    with pytest.raises(SinkError, match="belongs to owner 'default', not 'team-a'"):
        await make_sink("team-a").write(record("cid-a"))
    assert vault.state.secret(KEY[2])["client_id"] == "cid-new"


async def test_a_policy_without_metadata_rights_is_named_for_a_non_default_owner(
    vault: ServedVault, make_sink: MakeSink
) -> None:
    token = "s.data-only"
    vault.state.add_token(token, {"secret/data/streamkap/*": ["create", "read", "update"]})
    with pytest.raises(SinkError) as caught:
        await make_sink("team-a", token).write(record("cid-a"))
    assert 'capabilities ["create", "update"] on path "secret/metadata/streamkap/*"' in str(
        caught.value
    )
    assert vault.state.secret(KEY[2]) is None


def test_the_simulators_saved_state_keeps_the_owner(tmp_path: Path) -> None:
    # `--simulate` resumes from this file: losing the owner would block the owner's next run.
    state = VaultState()
    state.write(KEY, record("cid-a").to_document(), None)
    state.set_custom_metadata(KEY, {OWNER: "team-a"})
    save_state(tmp_path / "saved.json", SimulatorState(), state)
    resumed = VaultState()
    assert load_saved(tmp_path / "saved.json", SimulatorState(), resumed)
    assert resumed.custom_metadata(KEY) == {OWNER: "team-a"}
