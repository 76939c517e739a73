"""The container image without a Docker engine: the Dockerfile's rules, and its install steps.

No Docker daemon runs here, so the install is checked the way the build stage does it: build the
wheel from exactly what the Dockerfile copies, install it into a fresh venv, and run the entry
point as an unprivileged user.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.logs import SECRET_KEYS
from tests.support.served import REPO, Served

NOBODY = "65534"


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile)
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of instructions starting with its FROM."""
    found: list[list[tuple[str, str]]] = []
    for word, rest in instructions((REPO / "Dockerfile").read_text()):
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
    return found


def args_of(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [rest for found, rest in stage if found == word]


def test_image_is_built_in_one_stage_and_run_from_a_slim_one(
    stages: list[list[tuple[str, str]]],
) -> None:
    assert len(stages) == 2
    assert args_of(stages[0], "FROM")[0].endswith(" AS build")
    assert args_of(stages[1], "COPY") == ["--from=build /opt/provisioner /opt/provisioner"]
    assert "slim" in (REPO / "Dockerfile").read_text().split("ARG PYTHON_IMAGE=")[1].split()[0]


def test_runtime_runs_as_a_numeric_non_root_user(stages: list[list[tuple[str, str]]]) -> None:
    [user] = args_of(stages[-1], "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert gid.isdigit()


def test_entrypoint_is_exec_form_and_sigterm_stops_it(stages: list[list[tuple[str, str]]]) -> None:
    [entrypoint] = args_of(stages[-1], "ENTRYPOINT")
    assert json.loads(entrypoint) == ["provisioner"]
    assert json.loads(args_of(stages[-1], "CMD")[0])[0] in {"apply", "run", "--help"}
    assert args_of(stages[-1], "STOPSIGNAL") == ["SIGTERM"]


def test_image_carries_oci_labels(stages: list[list[tuple[str, str]]]) -> None:
    labels = " ".join(args_of(stages[-1], "LABEL"))
    for name in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{name}=" in labels


def test_no_secret_is_baked_into_the_image(stages: list[list[tuple[str, str]]]) -> None:
    for stage in stages:
        for word in ("ENV", "ARG"):
            for rest in args_of(stage, word):
                names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split("=")[0]]
                assert not [name for name in names if SECRET_KEYS.search(name)], rest
                assert "STREAMKAP_" not in rest


def test_dockerignore_lets_in_only_what_the_build_copies(
    stages: list[list[tuple[str, str]]],
) -> None:
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*"  # an allow-list: everything else stays out of the context
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = {
        source.rstrip("/")
        for rest in args_of(stages[0], "COPY")
        for source in rest.split()[:-1]
        if not source.startswith("--")
    }
    assert copied == allowed


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A fresh venv with the wheel installed, in a directory any user can read."""
    with tempfile.TemporaryDirectory(prefix="provisioner-wheel-") as name:
        root = Path(name)
        root.chmod(0o755)
        source = root / "src"
        source.mkdir()
        for item in ("pyproject.toml", "README.md", "provisioner"):  # what the Dockerfile copies
            copy = shutil.copytree if (REPO / item).is_dir() else shutil.copy2
            copy(REPO / item, source / item)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        run([*pip, "wheel", str(source), "--no-deps", "--wheel-dir", str(root / "dist")])
        [wheel] = (root / "dist").glob("streamkap_provisioner-*.whl")
        run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")])
        target = ["--python", str(root / "venv" / "bin" / "python")]
        run([*pip, *target, "install", "--no-deps", "--no-index", str(wheel)])
        subprocess.run(["chmod", "-R", "a+rX", name], check=True)
        yield root / "venv"


def run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def as_unprivileged(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run as nobody, with the dependencies of this venv but the provisioner of the wheel.

    The trade-off: dependencies come from this test venv (PYTHONPATH) instead of being installed
    again, which keeps the test to seconds and offline; the wheel's own files, its entry point
    and its package data are what is under test. Site directories on PYTHONPATH do not run .pth
    files, so this checkout's editable install cannot leak in (asserted below).
    """
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "STREAMKAP_HOST": "http://127.0.0.1:9",
        "PROVISIONER_LOG_FORMAT": "console",
    }
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip(
                "running as root and setpriv (util-linux) is missing: cannot drop to nobody"
            )
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )


def test_wheel_installs_and_its_entry_point_runs_as_non_root(installed: Path) -> None:
    where = as_unprivileged(
        [str(installed / "bin" / "python"), "-c", "import os, provisioner; "
         "print(os.getuid(), provisioner.__file__)"],
        cwd=installed,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    uid, path = where.stdout.split()
    assert uid != "0"
    assert Path(path).is_relative_to(installed)
    assert (Path(path).parent / "py.typed").is_file()
    helped = as_unprivileged([str(installed / "bin" / "provisioner"), "--help"], cwd=installed)
    assert helped.returncode == 0, helped.stderr
    assert re.search(r"^\s+run\s+apply on a schedule", helped.stdout, re.MULTILINE)


def test_installed_entry_point_validates_the_example_manifests(installed: Path) -> None:
    command = [str(installed / "bin" / "provisioner"), "validate", str(REPO / "manifests")]
    result = as_unprivileged(command, cwd=installed)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("OK: 8 credentials for 5 services in 4 files")


def test_the_simulator_dependencies_are_an_extra_not_the_base_install(installed: Path) -> None:
    """`pip install streamkap-provisioner` brings neither starlette nor uvicorn."""
    [wheel] = (installed.parent / "dist").glob("streamkap_provisioner-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        requires = [
            line.removeprefix("Requires-Dist: ")
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: ")
        ]
    for package in ("starlette", "uvicorn"):
        [requirement] = [line for line in requires if line.lower().startswith(package)]
        assert 'extra == "simulator"' in requirement


WITHOUT_SIMULATOR = (
    "import sys; sys.modules['starlette'] = sys.modules['uvicorn'] = None; "
    "from provisioner.cli import main; sys.exit(main(sys.argv[1:]))"
)


def without_simulator(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a process where starlette and uvicorn cannot be imported (no extra)."""
    command = [sys.executable, "-c", WITHOUT_SIMULATOR, *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args", [["apply", "manifests", "--simulate"], ["simulate", "--port", "0"]]
)
def test_without_the_extra_the_simulator_commands_say_how_to_install_it(args: list[str]) -> None:
    result = without_simulator(*args, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr
    assert "pip install 'streamkap-provisioner[simulator]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_extra_validate_and_plan_work(sim: Served, tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\n"
        "services:\n"
        "  - name: svc\n"
        "    credentials: [{name: reader, roles: [admin], sinks: [default]}]\n"
    )
    sink = f"file:{tmp_path / 'secrets'}"
    assert (
        without_simulator("validate", str(manifest), "--sink", sink, env=sim.env()).returncode == 0
    )
    console = sim.env(PROVISIONER_LOG_FORMAT="console")
    planned = without_simulator("plan", str(manifest), "--sink", sink, env=console)
    assert planned.returncode == 0, planned.stderr
    assert "+ svc/reader" in planned.stderr
