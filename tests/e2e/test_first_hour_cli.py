"""Issue 22, the CLI's part: what a new user met in the first hour, each as a real subprocess.

An unused `--sink` is said, plan and apply agree on a sink that cannot be written, colour obeys
NO_COLOR and `--no-color` on a real terminal (a pty), and the smaller snags: `--replace` typos,
the over-budget error said once, the missing login variable named, plurals, `--prune` leaving no
empty directory, and what `schema` says of `defaults`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.model import owner_key
from tests.support.manifests import one_credential
from tests.support.pty_run import stderr_on_a_pty
from tests.support.served import REPO, Served, run_cli

#: What root must give up for file modes to bind it (as in tests/e2e/test_privileges.py).
DROP = "-dac_override,-dac_read_search"
SGR = re.compile(r"\x1b\[[0-9;]*m")  # a colour or style escape; cursor moves are not colour
UNREACHABLE_VAULT = "vault:http://127.0.0.1:9/secret"


def events(stderr: str, name: str) -> list[dict[str, object]]:
    found = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [event for event in found if event.get("event") == name]


def console(sim: Served, **extra: str) -> dict[str, str]:
    return sim.env(PROVISIONER_LOG_FORMAT="console", **extra)


# --- 1. --sink used by no credential -----------------------------------------------------------


def test_a_sink_flag_no_credential_uses_is_a_warning_naming_it(sim: Served, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(one_credential())  # names its sink: `local`
    # No VAULT_TOKEN and nothing listening: it would fail at once if it were used.
    planned = run_cli("plan", "m.yaml", "--sink", UNREACHABLE_VAULT, cwd=tmp_path, env=sim.env())
    assert planned.returncode == 0, planned.stderr
    (warning,) = events(planned.stderr, "sink.unused")
    assert (warning["level"], warning["sink"]) == ("warning", UNREACHABLE_VAULT)
    assert "used by no credential" in str(warning["detail"])

    applied = run_cli("apply", "m.yaml", "--sink", "file:./elsewhere", cwd=tmp_path, env=sim.env())
    assert applied.returncode == 0, applied.stderr
    assert [e["sink"] for e in events(applied.stderr, "sink.unused")] == ["file:./elsewhere"]
    assert (tmp_path / "secrets" / "api" / "c.json").is_file()
    assert not (tmp_path / "elsewhere").exists()

    shown = run_cli("plan", "m.yaml", "--sink", UNREACHABLE_VAULT, cwd=tmp_path, env=console(sim))
    (line,) = [line for line in shown.stderr.splitlines() if "sink.unused" in line]
    assert "warning" in line
    assert UNREACHABLE_VAULT in line


def test_a_sink_flag_that_serves_a_credential_says_nothing(sim: Served, tmp_path: Path) -> None:
    text = one_credential().replace("        sinks: [local]\n", "")
    (tmp_path / "m.yaml").write_text(text)
    applied = run_cli("apply", "m.yaml", "--sink", "file:./out", cwd=tmp_path, env=sim.env())
    assert applied.returncode == 0, applied.stderr
    assert events(applied.stderr, "sink.unused") == []
    assert (tmp_path / "out" / "api" / "c.json").is_file()


# --- 2. plan and apply agree on a sink that cannot be written ----------------------------------

TWO_SINKS = """\
version: 1
defaults: {roles: [admin]}
sinks:
  frozen: {type: file, path: ./frozen}
  local: {type: file, path: ./secrets}
services:
  - name: api
    credentials:
      - name: a
        sinks: [frozen]
      - name: b
        sinks: [local]
"""


def unprivileged(*args: str) -> list[str]:
    """`python -m provisioner ARGS`, bound by file modes even when the tests run as root."""
    command = [sys.executable, "-m", "provisioner", *args]
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("root, and setpriv (util-linux) is missing to drop CAP_DAC_OVERRIDE")
    return ["setpriv", f"--bounding-set={DROP}", f"--inh-caps={DROP}", *command]


def test_plan_and_apply_block_the_same_credentials_of_an_unwritable_sink(
    sim: Served, tmp_path: Path
) -> None:
    (tmp_path / "m.yaml").write_text(TWO_SINKS)
    (tmp_path / "frozen").mkdir(mode=0o500)  # there, readable, but no file can be made in it
    env = console(sim, PROVISIONER_LOG_LEVEL="error")

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            unprivileged(command, "m.yaml"),
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    planned, applied = run("plan"), run("apply")
    blocked = [line for line in planned.stderr.splitlines() if line.startswith("cannot plan")]
    assert blocked == [
        "cannot plan api/a: sink 'frozen': cannot write records in frozen: "
        "permission denied (not writable)"
    ]
    assert planned.returncode == 1, planned.stderr
    # apply: the same verdict, the rest applied; no lock is tried where nothing can be written.
    assert [line for line in applied.stderr.splitlines() if line.startswith("cannot plan")] == (
        blocked
    )
    assert "lock" not in applied.stderr  # e.g. `cannot open the lock .../.provisioner.lock`
    assert applied.returncode == 1, applied.stderr
    assert applied.stderr.rstrip().endswith(
        "Applied: 1 created, 0 replaced, 0 deleted, 0 unchanged, 0 failed, 1 could not be planned."
    )
    assert [owner_key(record.description) for record in sim.state.live()] == ["api/b"]
    assert (tmp_path / "secrets" / "api" / "b.json").is_file()
    assert list((tmp_path / "frozen").iterdir()) == []


# --- 4. NO_COLOR and --no-color on a terminal --------------------------------------------------


def on_a_terminal(sim: Served, workdir: Path, *args: str, **env: str) -> str:
    """Run the CLI with stderr on a pseudo-terminal (as a person sees it); what it wrote there."""
    inherited = {name: value for name, value in console(sim).items() if name != "NO_COLOR"}
    return stderr_on_a_pty(list(args), workdir, inherited | env)


def log_line(text: str, event: str) -> str:
    (line,) = [line for line in text.splitlines() if event in line]
    return line


@pytest.mark.parametrize("progress", [(), ("--no-progress",)], ids=["progress", "no-progress"])
def test_no_color_and_the_flag_take_colour_off_every_line_log_lines_included(
    sim: Served, tmp_path: Path, progress: tuple[str, ...]
) -> None:
    (tmp_path / "m.yaml").write_text(one_credential())
    coloured = on_a_terminal(sim, tmp_path, "apply", "m.yaml", *progress)
    assert SGR.search(log_line(coloured, "credential.created"))  # the control: a terminal colours
    for case in ({"NO_COLOR": "1"}, {"NO_COLOR": "yes"}):
        text = on_a_terminal(
            sim, tmp_path, "apply", "m.yaml", "--replace", "api/c", *progress, **case
        )
        assert "credential.replaced" in text
        assert SGR.findall(text) == [], case
    flagged = on_a_terminal(
        sim, tmp_path, "apply", "m.yaml", "--replace", "api/c", "--no-color", *progress
    )
    assert "credential.replaced" in flagged
    assert SGR.findall(flagged) == []


def test_an_empty_no_color_is_as_if_unset(sim: Served, tmp_path: Path) -> None:
    """no-color.org: NO_COLOR counts when present and not empty."""
    (tmp_path / "m.yaml").write_text(one_credential())
    text = on_a_terminal(sim, tmp_path, "plan", "m.yaml", NO_COLOR="")
    assert SGR.search(log_line(text, "plan.ready"))
    assert "\x1b[32m  + api/c: missing\x1b[0m" in text


# --- 5. the smaller snags ----------------------------------------------------------------------


def test_a_mistyped_replace_key_gets_a_suggestion(sim: Served, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(one_credential())
    done = run_cli("plan", "m.yaml", "--replace", "api/cc", cwd=tmp_path, env=console(sim))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --replace api/cc: no such credential in the manifests "
        "(give <service>/<credential>); did you mean 'api/c'?"
    )
    assert sim.state.calls() == []


def test_the_over_budget_error_is_printed_once(sim: Served, tmp_path: Path) -> None:
    many = "".join(f"      - name: c{i}\n" for i in range(8))
    text = "version: 1\ndefaults: {roles: [admin], sinks: [local]}\n" + (
        "sinks:\n  local: {type: file, path: ./secrets}\nservices:\n  - name: api\n"
        f"    credentials:\n{many}"
    )
    (tmp_path / "m.yaml").write_text(text)
    assert run_cli("apply", "m.yaml", cwd=tmp_path, env=sim.env()).returncode == 0
    (tmp_path / "m.yaml").write_text(text.replace(many, "      - name: c0\n"))
    done = run_cli("apply", "m.yaml", "--prune", cwd=tmp_path, env=console(sim))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("exceed the change budget") == 1, done.stderr
    assert len(sim.state.live()) == 8


@pytest.mark.parametrize(
    ("given", "missing"),
    [("STREAMKAP_CLIENT_ID", "STREAMKAP_SECRET"), ("STREAMKAP_SECRET", "STREAMKAP_CLIENT_ID")],
)
def test_half_a_login_names_the_missing_variable(
    sim: Served, tmp_path: Path, given: str, missing: str
) -> None:
    (tmp_path / "m.yaml").write_text(one_credential())
    env = {
        k: v for k, v in sim.env().items() if k not in ("STREAMKAP_CLIENT_ID", "STREAMKAP_SECRET")
    }
    env[given] = "something-long-enough"
    done = run_cli("plan", "m.yaml", cwd=tmp_path, env=env | {"PROVISIONER_LOG_FORMAT": "console"})
    assert done.returncode == 2
    assert f"error: no API credential: {missing} is not set ({given} is)" in done.stderr


def test_validate_counts_in_the_singular(tmp_path: Path, sim: Served) -> None:
    (tmp_path / "m.yaml").write_text(one_credential())
    done = run_cli("validate", "m.yaml", cwd=tmp_path, env=console(sim))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "OK: 1 credential for 1 service in 1 file"


def test_prune_removes_a_service_directory_it_empties(sim: Served, tmp_path: Path) -> None:
    web = "  - name: web\n    credentials:\n      - name: x\n        roles: [admin]\n"
    both = one_credential() + web + "        sinks: [local]\n"
    (tmp_path / "m.yaml").write_text(both)
    assert run_cli("apply", "m.yaml", cwd=tmp_path, env=sim.env()).returncode == 0
    assert (tmp_path / "secrets" / "web" / "x.json").is_file()
    (tmp_path / "m.yaml").write_text(one_credential())
    done = run_cli("apply", "m.yaml", "--prune", cwd=tmp_path, env=sim.env())
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == [".provisioner.lock", "api"]


def test_schema_says_defaults_are_per_file_and_sinks_shared(tmp_path: Path, sim: Served) -> None:
    done = run_cli("schema", cwd=tmp_path, env=sim.env())
    properties = json.loads(done.stdout)["properties"]
    assert "per file" in properties["defaults"]["description"]
    assert "shared by every file" in properties["sinks"]["description"]
    manifests = (REPO / "README.md").read_text().split("## Manifests", 1)[1].split("\n## ", 1)[0]
    assert "`defaults` apply per file" in manifests
    assert "`sinks` are shared by every file" in manifests
