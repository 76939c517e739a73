"""End to end with the kubernetes sink: the CLI in a subprocess, the Secrets stub on a socket."""

from __future__ import annotations

import base64
from pathlib import Path

from provisioner.sinks.kubernetes import MANAGED_BY, MANAGER
from tests.support.kube_support import ServedKube
from tests.support.served import Served, run_cli
from tests.support.vault_support import ServedVault

MANIFEST = """\
version: 1
defaults:
  roles: [ReadOnly]
  sinks: [k8s]
sinks:
  k8s: {{type: kubernetes, namespace: payments, name: "streamkap-{{service}}-{{credential}}"}}
  vault: {{type: vault, address: '{vault}', mount: secret}}
services:
  - name: svc
    service_id: {service_id}
    credentials:
      - name: one
        sinks: [k8s, vault]
{more}"""


def setup(tmp_path: Path, vault: ServedVault, *, service_id: str = "svc-a", more: str = "") -> None:
    (tmp_path / "manifests").mkdir(exist_ok=True)
    text = MANIFEST.format(vault=vault.url, service_id=service_id, more=more)
    (tmp_path / "manifests" / "m.yaml").write_text(text)


def apply(
    sim: Served, kube: ServedKube, vault: ServedVault, cwd: Path, *extra: str
) -> tuple[int, str]:
    env = sim.env(**vault.env(), **kube.env(cwd / "site"), PROVISIONER_MAX_ATTEMPTS="2")
    result = run_cli("apply", "manifests", *extra, cwd=cwd, env=env)
    return result.returncode, result.stderr


def held(kube: ServedKube, name: str = "streamkap-svc-one") -> dict[str, str] | None:
    return kube.state.decoded("payments", name)


def test_apply_delivers_and_a_second_apply_writes_nothing(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    setup(tmp_path, vault, more="      - name: two_x\n")
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 0, stderr
    live = {record.client_id: record.secret for record in sim.state.live()}
    for name in ("streamkap-svc-one", "streamkap-svc-two-x"):
        secret = kube.official().read_namespaced_secret(name, "payments")  # the official client
        assert secret.metadata.labels[MANAGED_BY] == MANAGER
        data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
        assert live[data["client_id"]] == data["secret"]

    sim.state.reset_calls()
    kube.state.reset_calls()
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 0, stderr
    assert sim.state.write_calls() == []
    assert kube.state.write_calls() == []
    assert {call.method for call in kube.state.calls()} == {"GET"}


def test_a_replace_the_second_sink_refuses_puts_the_previous_secret_back(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    setup(tmp_path, vault)
    assert apply(sim, kube, vault, tmp_path)[0] == 0
    before = held(kube)
    assert before is not None
    setup(tmp_path, vault, service_id="svc-b")  # a named service_id differs: replace
    vault.state.fail_writes = True
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 1, stderr
    assert held(kube) == before  # the undo put the old record back
    assert [r.client_id for r in sim.state.live()] == [before["client_id"]]
    vault.state.fail_writes = False
    assert apply(sim, kube, vault, tmp_path)[0] == 0
    after = held(kube)
    assert after is not None
    assert after["client_id"] != before["client_id"]


def test_prune_deletes_the_secret_of_a_credential_no_manifest_wants(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    setup(tmp_path, vault, more="      - name: two\n")
    assert apply(sim, kube, vault, tmp_path)[0] == 0
    assert held(kube, "streamkap-svc-two") is not None
    setup(tmp_path, vault)
    code, stderr = apply(sim, kube, vault, tmp_path, "--prune")
    assert code == 0, stderr
    assert held(kube, "streamkap-svc-two") is None
    assert held(kube) is not None


def test_a_conflict_is_retried(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    setup(tmp_path, vault)
    assert apply(sim, kube, vault, tmp_path)[0] == 0
    setup(tmp_path, vault, service_id="svc-b")
    kube.state.conflicts = 1
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 0, stderr
    assert 409 in [call.status for call in kube.state.calls() if call.method == "PUT"]
    [record] = sim.state.live()
    assert (held(kube) or {})["client_id"] == record.client_id


def test_a_secret_without_the_label_is_left_alone_and_the_credential_fails(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    setup(tmp_path, vault)
    kube.state.put("payments", "streamkap-svc-one", {"token": "someone-elses"})
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 1, stderr
    assert "not created by streamkap-provisioner" in stderr
    assert held(kube) == {"token": "someone-elses"}
    assert sim.state.live() == []
    assert "someone-elses" not in stderr


def test_without_the_extra_a_manifest_naming_the_sink_exits_2_with_the_install_line(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    setup(tmp_path, vault)
    blocked = tmp_path / "no-lightkube"
    (blocked / "lightkube").mkdir(parents=True)
    (blocked / "lightkube" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = sim.env(**vault.env(), **kube.env(tmp_path / "site"))
    env["PYTHONPATH"] = f"{blocked}:{env['PYTHONPATH']}"
    for command in ("validate", "apply"):
        result = run_cli(command, "manifests", cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        assert "pip install 'streamkap-provisioner[kubernetes]'" in result.stderr
        assert "m.yaml" in result.stderr
    assert sim.state.write_calls() == []


def test_two_owners_of_one_key_in_one_namespace_never_overwrite_each_other(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    # Issue 21: the annotation lacked the owner, so the second owner's run replaced the Secret.
    setup(tmp_path, vault)
    manifest = tmp_path / "manifests" / "m.yaml"
    text = manifest.read_text().replace("        sinks: [k8s, vault]\n", "")
    manifest.write_text("owner: team-a\n" + text)
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 0, stderr
    first = held(kube)
    assert first is not None
    secret = kube.official().read_namespaced_secret("streamkap-svc-one", "payments")
    assert secret.metadata.annotations["streamkap-provisioner/owner"] == "team-a"

    manifest.write_text("owner: team-b\n" + text)
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 1, stderr
    assert "belongs to owner 'team-a', not 'team-b'" in stderr
    assert held(kube) == first  # team-a's Secret is untouched
    assert len(sim.state.live()) == 1  # nothing was created for team-b to throw away


def test_a_secret_written_before_owners_were_recorded_is_the_default_owners(
    sim: Served, kube: ServedKube, vault: ServedVault, tmp_path: Path
) -> None:
    setup(tmp_path, vault)
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 0, stderr
    secret = kube.state.get("payments", "streamkap-svc-one")
    del secret["metadata"]["annotations"]["streamkap-provisioner/owner"]  # as the old version
    kube.state.replace("payments", "streamkap-svc-one", secret)
    sim.state.reset_calls()
    code, stderr = apply(sim, kube, vault, tmp_path)
    assert code == 0, stderr  # still the default owner's: read, nothing to change
    assert sim.state.write_calls() == []
