"""The API as Streamkap documents it, and answers that must not be trusted (issue 12, "Done when").

The CLI in a subprocess against the simulator on a socket, a file sink; one behaviour per test.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from provisioner.model import owner_key
from provisioner.simulator import (
    ALL_PERMISSIONS,
    READ_ROLES,
    SERVICE_ID,
    WRITE_CREDENTIALS,
    Call,
    CredentialRecord,
    FaultConfig,
    SimulatorState,
    serve_in_thread,
)
from tests.support.served import Served, run_cli, served

CREDS = "/auth/client-credentials"
TOKEN = "/auth/access-token"
KEY = "payments/ingest"
#: The attempts per call the CLI is given (tests.support.served sets the same).
ATTEMPTS = 6


def manifest(*credentials: str, roles: str = "roles: [Read Only]") -> str:
    """A manifest of service `payments`, one credential per name, each to the file sink."""
    body = "".join(
        f"      - name: {name}\n        {roles}\n        sinks: [files]\n"
        for name in credentials or ("ingest",)
    )
    return (
        "version: 1\n"
        "sinks:\n"
        "  files: {type: file, path: ./secrets}\n"
        "services:\n"
        "  - name: payments\n"
        "    credentials:\n" + body
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "manifest.yaml").write_text(manifest())
    return tmp_path


def run(
    sim: Served, workdir: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """`provisioner ARGS manifest.yaml` (default `apply`), the call log cleared first."""
    sim.state.reset_calls()
    return run_cli(
        *(args or ("apply",)),
        "manifest.yaml",
        cwd=workdir,
        env=sim.env(
            **{"PROVISIONER_LOG_LEVEL": "error", "PROVISIONER_LOG_FORMAT": "console", **env}
        ),
        timeout=timeout,
    )


def faults(**options: object) -> FaultConfig:
    """A fault configuration from options given as plain values (validated)."""
    return FaultConfig.model_validate(options)


def converge(sim: Served, workdir: Path) -> None:
    result = run(sim, workdir)
    assert result.returncode == 0, result.stderr


def writes(sim: Served) -> list[Call]:
    """Every create, update and delete call since the log was cleared."""
    return [
        c for c in sim.state.calls(path_prefix=CREDS) if c.method in {"POST", "PATCH", "DELETE"}
    ]


def marked(sim: Served, key: str = KEY) -> list[CredentialRecord]:
    return [r for r in sim.state.live() if owner_key(r.description) == key]


def sink_files(workdir: Path) -> list[Path]:
    return sorted((workdir / "secrets").rglob("*.json")) if (workdir / "secrets").exists() else []


def held(workdir: Path, key: str = KEY) -> dict[str, object]:
    service, name = key.split("/")
    document: dict[str, object] = json.loads(
        (workdir / "secrets" / service / f"{name}.json").read_text()
    )
    return document


def assert_converged(sim: Served, workdir: Path, key: str = KEY) -> CredentialRecord:
    """One live credential for the key, its real secret in the sink; a re-run writes nothing."""
    (record,) = marked(sim, key)
    document = held(workdir, key)
    assert (document["client_id"], document["secret"]) == (record.client_id, record.secret)
    again = run(sim, workdir)
    assert again.returncode == 0, again.stderr
    assert writes(sim) == []
    return record


def assert_no_empty_secret_in_a_sink(sim: Served, workdir: Path) -> None:
    live = {r.client_id: r.secret for r in sim.state.live()}
    for path in sink_files(workdir):
        document = json.loads(path.read_text())
        assert document["secret"], path
        assert live.get(document["client_id"]) == document["secret"], path


def failed_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("failed: ")]


# 1. service_id is computed ------------------------------------------------------------------


def test_a_service_id_the_api_fills_in_is_not_drift(sim: Served, workdir: Path) -> None:
    assert sim.state.fill_service_id  # the documented default: the caller's service
    (workdir / "manifest.yaml").write_text(
        manifest("ingest") + "  - name: orders\n    service_id: svc-other\n    credentials:\n"
        "      - name: named\n        roles: [Read Only]\n        sinks: [files]\n"
    )
    converge(sim, workdir)
    (filled,) = marked(sim)
    assert filled.service_id == SERVICE_ID  # the create named none: the API filled it in
    (named,) = marked(sim, "orders/named")
    assert named.service_id == "svc-other"  # a named one is sent and kept
    assert run(sim, workdir, "plan", "--detailed-exitcode").returncode == 0  # no changes
    assert_converged(sim, workdir)
    assert_converged(sim, workdir, "orders/named")


# 7. a create answer without a usable secret --------------------------------------------------


SECRET_DEFECTS = {
    "secret_missing": "no secret",
    "secret_null": "no secret",
    "secret_empty": "no secret",
    "secret_not_string": "a int secret",
    "secret_masked": "a masked secret",
}


@pytest.mark.parametrize("defect", sorted(SECRET_DEFECTS))
def test_a_create_answer_without_a_usable_secret_is_deleted_never_delivered(
    sim: Served, workdir: Path, defect: str
) -> None:
    sim.state.faults = faults(bad_create_answer=defect)
    result = run(sim, workdir)
    assert result.returncode == 1, result.stderr
    (line,) = failed_lines(result)
    assert line.startswith(f"failed: {KEY}: create of {KEY}: the answer carries ")
    assert SECRET_DEFECTS[defect] in line
    assert "is deleted" in line
    assert "Traceback" not in result.stderr
    (created,) = sim.state.calls("POST", CREDS)
    assert created.status == 201  # the API did make one...
    assert sim.state.live() == []  # ...and it is gone again
    assert sink_files(workdir) == []  # no sink holds an empty, "None" or masked secret
    assert_no_empty_secret_in_a_sink(sim, workdir)

    sim.state.faults = FaultConfig()
    converge(sim, workdir)
    assert_converged(sim, workdir)


# 8. an unparseable create answer is an ambiguous create --------------------------------------


@pytest.mark.parametrize("defect", ["truncated_json", "client_id_missing"])
def test_an_unparseable_create_answer_is_cleaned_up_and_the_create_retried(
    sim: Served, workdir: Path, defect: str
) -> None:
    sim.state.faults = faults(bad_create_answer=defect, bad_create_answer_count=1)
    result = run(sim, workdir)
    assert result.returncode == 0, result.stderr
    creates = sim.state.calls("POST", CREDS)
    assert len(creates) == 2  # the lost one, then the retry
    (deleted,) = sim.state.calls("DELETE")  # the leftover of the lost attempt
    (record,) = sim.state.live()
    assert deleted.path != f"{CREDS}/{record.client_id}"
    assert held(workdir)["secret"] == record.secret
    assert_converged(sim, workdir)


@pytest.mark.parametrize("defect", ["truncated_json", "client_id_missing"])
def test_an_api_that_never_answers_a_create_usably_is_left_with_no_credential(
    sim: Served, workdir: Path, defect: str
) -> None:
    sim.state.faults = faults(bad_create_answer=defect)
    result = run(sim, workdir)
    assert result.returncode == 1, result.stderr
    (line,) = failed_lines(result)
    assert f"create of {KEY} has an unknown outcome" in line
    assert "Traceback" not in result.stderr
    creates, deletes = sim.state.calls("POST", CREDS), sim.state.calls("DELETE")
    assert len(creates) == ATTEMPTS
    assert len(deletes) == ATTEMPTS  # every credential an attempt made was deleted again
    assert sim.state.live() == []
    assert sink_files(workdir) == []


# 9. a create unlike what was asked -----------------------------------------------------------


CHANGED = {
    "description_cut": "the description lost its ownership marker",
    "extra_role": "roles role-read-only became role-admin,role-read-only",
}


@pytest.mark.parametrize("defect", sorted(CHANGED))
def test_a_create_unlike_what_was_asked_fails_and_never_accumulates(
    sim: Served, workdir: Path, defect: str
) -> None:
    sim.state.faults = faults(bad_create_answer=defect)
    for _ in range(3):
        result = run(sim, workdir)
        assert result.returncode == 1, result.stderr
        (line,) = failed_lines(result)
        assert f"create of {KEY}: the API changed what was asked: {CHANGED[defect]}" in line
        assert "is deleted" in line
        assert sim.state.live() == []  # marked or not (a cut description loses the marker)
        assert sink_files(workdir) == []


@pytest.mark.parametrize("defect", sorted(CHANGED))
def test_a_rotation_the_api_alters_keeps_the_old_credential_and_adds_none(
    sim: Served, workdir: Path, defect: str
) -> None:
    (workdir / "manifest.yaml").write_text(
        manifest().replace(
            "version: 1\n", "version: 1\ndefaults:\n  rotate_after: 1d\n  grace: 1h\n"
        )
    )
    converge(sim, workdir)
    (old,) = marked(sim)
    sim.state.age(None, timedelta(days=2))
    sim.state.faults = faults(bad_create_answer=defect)
    for _ in range(3):
        result = run(sim, workdir)
        assert result.returncode == 1, result.stderr
        assert CHANGED[defect] in failed_lines(result)[0]
        assert [r.client_id for r in sim.state.live()] == [old.client_id]
        assert (held(workdir)["client_id"], held(workdir)["secret"]) == (old.client_id, old.secret)


# 10. a listing that repeats a client_id ------------------------------------------------------


def test_a_listing_that_repeats_entries_leaves_a_converged_run_converged(
    sim: Served, workdir: Path
) -> None:
    (workdir / "manifest.yaml").write_text(manifest("ingest", "reporting"))
    converge(sim, workdir)
    before = [r.client_id for r in sim.state.live()]
    sim.state.faults = FaultConfig(bad_list_answer="duplicate_entries")

    plan = run(sim, workdir, "plan", PROVISIONER_LOG_LEVEL="info")  # quiet at error
    assert "Plan: 0 to create, 0 to replace, 0 to delete, 2 unchanged." in plan.stderr
    result = run(sim, workdir)
    assert result.returncode == 0, result.stderr
    assert writes(sim) == []
    assert [r.client_id for r in sim.state.live()] == before
    for key in (KEY, "payments/reporting"):
        (record,) = marked(sim, key)
        assert held(workdir, key)["client_id"] == record.client_id


# 11. malformed answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "call"),
    [
        ({"bad_list_answer": "not_a_list"}, f"GET {CREDS}"),
        ({"bad_list_answer": "missing_fields"}, f"GET {CREDS}"),
        ({"bad_list_answer": "truncated_json"}, f"GET {CREDS}"),
        ({"bad_roles_answer": "not_a_list"}, "GET /auth/roles"),
        ({"bad_roles_answer": "missing_fields"}, "GET /auth/roles"),
        ({"bad_roles_answer": "truncated_json"}, "GET /auth/roles"),
    ],
    ids=lambda value: "-".join(value.values()) if isinstance(value, dict) else None,
)
def test_a_malformed_listing_ends_the_run_with_one_line_naming_the_call(
    sim: Served, workdir: Path, fault: dict[str, str], call: str
) -> None:
    converge(sim, workdir)  # a credential to list
    sim.state.faults = FaultConfig.model_validate(fault)
    result = run(sim, workdir)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {call}: the API's answer is not usable: ")
    assert "Traceback" not in result.stderr
    assert writes(sim) == []


@pytest.mark.parametrize("defect", ["expires_in_zero", "expires_in_negative", "expires_in_missing"])
def test_a_token_lifetime_missing_or_not_positive_does_not_mean_a_login_per_call(
    sim: Served, workdir: Path, defect: str
) -> None:
    (workdir / "manifest.yaml").write_text(manifest(*(f"c{i}" for i in range(8))))
    sim.state.faults = faults(bad_token_answer=defect)
    result = run(sim, workdir)
    assert result.returncode == 0, result.stderr
    logins = sim.state.calls(path_prefix=TOKEN)
    others = [c for c in sim.state.calls() if not c.path.startswith(TOKEN)]
    assert len(others) >= 10  # roles, listing and eight creates
    assert len(logins) == 1
    assert len(sim.state.live()) == 8


@pytest.mark.parametrize("defect", ["not_an_object", "access_token_missing", "truncated_json"])
def test_a_malformed_token_answer_is_a_wrong_host(sim: Served, workdir: Path, defect: str) -> None:
    sim.state.faults = faults(bad_token_answer=defect)
    result = run(sim, workdir)
    assert result.returncode == 2, result.stderr
    assert f"{sim.url}{TOKEN} does not answer as Streamkap's API" in result.stderr
    assert "check STREAMKAP_HOST" in result.stderr
    assert "Traceback" not in result.stderr
    assert sim.state.calls(path_prefix=CREDS) == []


async def _not_found(request: Request) -> Response:
    return Response("Not Found", 404, media_type="text/plain")


async def _html(request: Request) -> Response:
    return HTMLResponse("<!doctype html><html><body>Welcome to nginx!</body></html>")


@contextmanager
def wrong_host(kind: str) -> Iterator[str]:
    """A server on a socket that is not Streamkap's API; yields the STREAMKAP_HOST to give."""
    if kind == "json-404":  # the simulator itself, under a path prefix it does not serve
        with served() as other:
            yield f"{other.url}/v2"
        return
    endpoint = _not_found if kind == "404" else _html
    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.parametrize("kind", ["404", "json-404", "html"])
def test_a_host_that_is_not_the_api_is_a_configuration_error(
    sim: Served, workdir: Path, kind: str
) -> None:
    with wrong_host(kind) as url:
        result = run(sim, workdir, STREAMKAP_HOST=url)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {url}{TOKEN} does not answer as Streamkap's API")
    assert "check STREAMKAP_HOST" in line
    assert sim.state.calls() == []


# 6. permissions ------------------------------------------------------------------------------


def test_a_login_without_the_write_permission_ends_the_run_after_one_create(
    workdir: Path,
) -> None:
    (workdir / "manifest.yaml").write_text(manifest(*(f"c{i}" for i in range(6))))
    state = SimulatorState(admin_permissions=ALL_PERMISSIONS - {WRITE_CREDENTIALS})
    with served(state) as sim:
        # One request at a time, so "after the first 403" is well defined.
        result = run(sim, workdir, PROVISIONER_CONCURRENCY="1")
        assert result.returncode == 2, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: POST {CREDS}: HTTP 403")
        assert "lacks the fe.secure.write.tenantApiTokens permission" in last
        assert [c.status for c in writes(sim)] == [403]  # no further create, no delete
        assert sim.state.live() == []
    assert sink_files(workdir) == []


def test_a_login_without_the_roles_permission_is_told_which_one(workdir: Path) -> None:
    state = SimulatorState(admin_permissions=ALL_PERMISSIONS - {READ_ROLES})
    with served(state) as sim:
        result = run(sim, workdir)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: GET /auth/roles: HTTP 403")
        assert "lacks the fe.secure.read.roles permission" in line
        assert writes(sim) == []


# 12. an unreachable API fails fast and says where --------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", ["refused", "tls", "dns"])
def test_an_unreachable_api_fails_fast_naming_url_cause_and_variable(
    sim: Served, workdir: Path, kind: str
) -> None:
    host, cause = {
        "refused": (f"http://127.0.0.1:{_closed_port()}", "connection refused"),
        "tls": (sim.url.replace("http://", "https://"), "TLS handshake failed"),
        "dns": ("http://nonexistent.invalid", "host name not found (DNS)"),
    }[kind]
    result = run(sim, workdir, timeout=30, STREAMKAP_HOST=host)  # TimeoutExpired fails it
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{host}{TOKEN}: {cause}" in line
    assert "check STREAMKAP_HOST" in line
    assert sim.state.calls() == []


# 2. roles xor permissions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("access", "problem"),
    [
        (
            "roles: [Read Only]\n        permissions: [perm-1]",
            "manifest.yaml:9: services[payments].credentials[ingest].permissions: "
            "give roles or permissions, not both",
        ),
        (
            "description: no access at all",
            "manifest.yaml:7: services[payments].credentials[ingest]: no access: give `roles`",
        ),
    ],
    ids=["both", "neither"],
)
def test_roles_and_permissions_are_exclusive_and_one_is_required_before_any_call(
    sim: Served, workdir: Path, access: str, problem: str
) -> None:
    (workdir / "manifest.yaml").write_text(manifest(roles=access))
    result = run(sim, workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(problem)
    assert sim.state.calls() == []
