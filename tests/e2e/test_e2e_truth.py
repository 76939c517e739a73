"""A plan that tells the truth (issue 13, points 6 and 7): the CLI in a subprocess, the simulator
and the Vault stub on sockets.

A wrong Vault token gives one message and blocks exactly the credentials that use Vault; an
unwritable file sink blocks its credentials in plan, and apply makes no create call for them;
a plan says what a create will make; piped output carries no colour, a terminal does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.model import owner_key
from tests.conftest import WriteManifest
from tests.support.pty_run import stderr_on_a_pty
from tests.support.served import Served, run_cli
from tests.support.vault_support import ServedVault

VAULT_KEYS = [f"vaulted/c{i:02}" for i in range(12)]
FILE_KEYS = ["local/a", "local/b"]


def manifest(vault_url: str) -> str:
    lines = [
        "version: 1",
        "defaults:",
        "  roles: [read_only]",
        "  rotate_after: 90d",
        "sinks:",
        f"  vault: {{type: vault, address: '{vault_url}', mount: secret, prefix: streamkap}}",
        "  files: {type: file, path: ./secrets}",
        "services:",
        "  - name: vaulted",
        "    credentials:",
        *[
            f"      - name: {key.split('/')[1]}\n        sinks: [vault, files]"
            for key in VAULT_KEYS
        ],
        "  - name: local",
        "    credentials:",
        *[f"      - name: {key.split('/')[1]}\n        sinks: [files]" for key in FILE_KEYS],
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def workdir(tmp_path: Path, vault: ServedVault, write_manifest: WriteManifest) -> Path:
    write_manifest("services.yaml", manifest(vault.url))
    return tmp_path


def cli(
    sim: Served, vault: ServedVault, workdir: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    defaults = {"PROVISIONER_LOG_LEVEL": "error", "PROVISIONER_LOG_FORMAT": "console"}
    environment = sim.env(**{**vault.env(), **defaults, **env})
    return run_cli(*args, cwd=workdir, env=environment)


def cannot_plan_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("cannot plan")]


def test_a_wrong_vault_token_is_one_message_and_blocks_the_vault_credentials(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    first = cli(sim, vault, workdir, "apply", "manifests")
    assert first.returncode == 0, first.stderr
    sim.state.reset_calls()
    vault.state.reset_calls()

    planned = cli(
        sim, vault, workdir, "plan", "manifests", "--json", "--detailed-exitcode",
        VAULT_TOKEN="s.wrong-token",
    )  # fmt: skip
    assert planned.returncode == 1, planned.stderr
    (line,) = cannot_plan_lines(planned.stderr)
    assert line.startswith(
        "cannot plan 12 credentials (vaulted/c00, vaulted/c01, vaulted/c02 and 9 more): "
        f"sink 'vault': Vault at {vault.url} refused the token (HTTP 403"
    )
    assert planned.stderr.count("refused the token") == 1
    assert planned.stderr.rstrip().splitlines()[-1] == (
        "Plan: 0 to create, 0 to replace, 0 to delete, 2 unchanged, 12 could not be planned."
    )
    document = json.loads(planned.stdout)
    assert document["summary"]["blocked"] == 12
    assert document["summary"]["unchanged"] == 2
    assert document["changes"] is False
    by_key = {action["key"]: action for action in document["actions"]}
    assert {key for key, a in by_key.items() if a["action"] == "blocked"} == set(VAULT_KEYS)
    assert {a["reason"] for a in by_key.values() if a["action"] == "blocked"} == {"sink-error"}
    assert [entry["key"] for entry in document["blocked"]] == VAULT_KEYS
    # One token lookup for the sink, not one failing read per credential.
    assert [(c.method, c.path, c.status) for c in vault.state.calls()] == [
        ("GET", "/v1/auth/token/lookup-self", 403)
    ]
    assert "s.wrong-token" not in planned.stderr + planned.stdout

    applied = cli(sim, vault, workdir, "apply", "manifests", VAULT_TOKEN="s.wrong-token")
    assert applied.returncode == 1
    assert len(cannot_plan_lines(applied.stderr)) == 1
    assert applied.stderr.rstrip().splitlines()[-1] == (
        "Applied: 0 created, 0 replaced, 0 deleted, 2 unchanged, 0 failed, 12 could not be planned."
    )
    assert sim.state.write_calls() == []

    # Logging as JSON, the same is one event for the cause, not one per credential.
    logged = cli(
        sim, vault, workdir, "apply", "manifests",
        VAULT_TOKEN="s.wrong-token", PROVISIONER_LOG_FORMAT="json",
    )  # fmt: skip
    events = [json.loads(line) for line in logged.stderr.splitlines() if line.startswith("{")]
    (blocked,) = [event for event in events if event["event"] == "plan.blocked"]
    assert (blocked["credentials"], blocked["keys"]) == (12, VAULT_KEYS)
    assert blocked["message"] == line


def test_a_file_sink_under_a_regular_file_blocks_its_credentials_and_apply_creates_none(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    (workdir / "secrets").write_text("a regular file where the sink's directory should be")
    planned = cli(sim, vault, workdir, "plan", "manifests", "--json")
    assert planned.returncode == 1
    (line,) = cannot_plan_lines(planned.stderr)
    assert line == (
        "cannot plan 14 credentials (vaulted/c00, vaulted/c01, vaulted/c02 and 11 more): "
        "sink 'files': cannot write records in secrets: not a directory"
    )
    assert json.loads(planned.stdout)["summary"]["blocked"] == 14
    assert "To create:" not in planned.stderr  # no promise of a change that would be undone

    applied = cli(sim, vault, workdir, "apply", "manifests")
    assert applied.returncode == 1
    assert sim.state.calls("POST", "/auth/client-credentials") == []
    assert sim.state.live() == []
    assert "14 could not be planned." in applied.stderr


def _read_only_bind_works(probe: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && ! touch "$1/x"'
    try:
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", script, "sh", str(probe)],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


def test_a_read_only_file_sink_passes_reads_but_blocks_creates(sim: Served, tmp_path: Path) -> None:
    """The cron case of the issue: the directory reads fine, but every write would fail."""
    (tmp_path / "secrets").mkdir()
    if not _read_only_bind_works(tmp_path / "secrets"):
        pytest.skip("cannot make a read-only bind mount here (needs unshare -m and mount)")
    (tmp_path / "m.yaml").write_text(
        "version: 1\nsinks:\n  files: {type: file, path: ./secrets}\nservices:\n"
        "  - name: api\n    credentials:\n      - name: ingest\n        roles: [read_only]\n"
        "        sinks: [files]\n      - name: other\n        roles: [read_only]\n"
        "        sinks: [files]\n"
    )
    script = (
        'd="$1"; shift; mount --bind "$d" "$d" && mount -o remount,ro,bind "$d" "$d" && exec "$@"'
    )
    env = sim.env(PROVISIONER_LOG_LEVEL="error", PROVISIONER_LOG_FORMAT="console")

    def read_only(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", script, "sh", str(tmp_path / "secrets"),
             sys.executable, "-m", "provisioner", command, "m.yaml"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    planned = read_only("plan")
    assert planned.returncode == 1, planned.stderr
    assert cannot_plan_lines(planned.stderr) == [
        "cannot plan 2 credentials (api/ingest, api/other): "
        "sink 'files': cannot write records in secrets: read-only file system"
    ]
    assert "To create:" not in planned.stderr
    # apply stops before any write (here already at the sink's lock file): no create to undo
    assert read_only("apply").returncode == 1
    assert sim.state.calls("POST", "/auth/client-credentials") == []
    assert sim.state.live() == []


def test_a_plan_says_what_each_create_will_make(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    planned = cli(sim, vault, workdir, "plan", "manifests", "--json")
    assert planned.returncode == 0, planned.stderr
    lines = planned.stderr.splitlines()
    at = lines.index("  + vaulted/c00: missing")
    assert lines[at + 1].startswith("      roles Read Only; sinks vault, files; rotates 20")
    action = json.loads(planned.stdout)["actions"][0]
    assert action["after"]["roles"] == ["Read Only"]
    assert action["after"]["sinks"] == ["vault", "files"]
    assert action["after"]["rotates_at"].endswith("Z")


def test_piped_output_has_no_colour(sim: Served, vault: ServedVault, workdir: Path) -> None:
    for command in ("plan", "apply"):
        done = cli(sim, vault, workdir, command, "manifests")
        assert done.returncode == 0, done.stderr
        assert "\x1b[" not in done.stderr + done.stdout
        assert "+ local/a: missing" in done.stderr or command == "apply"


def on_a_terminal(sim: Served, vault: ServedVault, workdir: Path, **env: str) -> str:
    """Run `plan` with stderr on a pseudo-terminal; what it wrote there."""
    defaults = {"PROVISIONER_LOG_LEVEL": "error", "PROVISIONER_LOG_FORMAT": "console"}
    environment = sim.env(**{**vault.env(), **defaults, **env})
    return stderr_on_a_pty(["plan", "manifests"], workdir, environment)


def test_a_terminal_gets_colour_unless_no_color_is_set(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    assert "\x1b[32m  + local/a: missing\x1b[0m" in on_a_terminal(sim, vault, workdir)
    # Issue 22: any non-empty value (no-color.org); an empty one is as if unset
    assert "\x1b[" not in on_a_terminal(sim, vault, workdir, NO_COLOR="1")


def test_apply_with_the_right_token_converges_after_a_blocked_run(
    sim: Served, vault: ServedVault, workdir: Path
) -> None:
    blocked = cli(sim, vault, workdir, "apply", "manifests", VAULT_TOKEN="s.wrong")
    assert blocked.returncode == 1
    live = {owner_key(r.description) for r in sim.state.live()}
    assert live == set(FILE_KEYS)  # the vault credentials were not created and undone
    assert cli(sim, vault, workdir, "apply", "manifests").returncode == 0
    assert len(sim.state.live()) == len(VAULT_KEYS) + len(FILE_KEYS)
