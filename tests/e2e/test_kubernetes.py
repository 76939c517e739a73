"""deploy/kubernetes: schema-valid (offline, strict), hardened, and consistent with the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from provisioner.cli.main import build_parser
from provisioner.config import SECRETS_DIR, Settings
from provisioner.logs import SECRET_KEYS
from provisioner.manifest import load_manifests, manifest_schema
from provisioner.sinks.vault.auth import SERVICE_ACCOUNT_TOKEN
from tests.support.served import REPO

DEPLOY = REPO / "deploy" / "kubernetes"
FILES = sorted(DEPLOY.glob("*.yaml"))
# The oldest Kubernetes the files claim to support (CronJob timeZone and podFailurePolicy),
# and the newest whose schemas kubernetes-validate bundles.
VERSIONS = ["1.29.0", "latest"]


def documents() -> list[dict[str, Any]]:
    return [doc for path in FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, Any]:
    [found] = [doc for doc in documents() if doc["kind"] == kind]
    return found


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    yield "CronJob", by_kind("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    yield "Deployment", by_kind("Deployment")["spec"]["template"]["spec"]


def provisioner_container(spec: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in spec["containers"] if c["name"] == "provisioner"]
    [container] = found
    return container


def validate(*paths: Path, version: str) -> subprocess.CompletedProcess[str]:
    """`kubernetes-validate --strict`, with the schemas the package bundles (no network)."""
    flags = [] if version == "latest" else ["-k", version]
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", *flags, *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_file_validates_strictly(version: str) -> None:
    assert {path.name for path in FILES} >= {"cronjob.yaml", "deployment.yaml", "configmap.yaml"}
    result = validate(*FILES, version=version)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(documents())


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        (DEPLOY / "cronjob.yaml").read_text().replace("concurrencyPolicy", "concurency")
    )
    result = validate(typo, version="latest")
    assert result.returncode != 0
    assert "'concurency' was unexpected" in result.stdout + result.stderr


def test_cronjob_never_overlaps_and_gives_up_on_configuration_errors() -> None:
    spec = by_kind("CronJob")["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    [rule] = spec["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert (rule["action"], rule["onExitCodes"]["values"]) == ("FailJob", [2])


def test_deployment_runs_one_reconciler_on_a_schedule() -> None:
    spec = by_kind("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    args = provisioner_container(spec["template"]["spec"])["args"]
    assert args[0] == "run"
    assert any(arg.startswith("--every=") for arg in args)
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


@pytest.mark.parametrize(("kind", "spec"), list(pod_specs()))
def test_pods_are_hardened(kind: str, spec: dict[str, Any]) -> None:
    security = spec["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == dockerfile_uid()
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}
        assert container["resources"]["limits"]["memory"]


@pytest.mark.parametrize(("kind", "spec"), list(pod_specs()))
def test_credentials_come_from_secrets_and_manifests_from_the_configmap(
    kind: str, spec: dict[str, Any]
) -> None:
    container = provisioner_container(spec)
    literal = [e["name"] for e in container.get("env", []) if "value" in e]
    assert not [name for name in literal if SECRET_KEYS.search(name) or "CLIENT_ID" in name]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    secrets = volumes[_mounted_at(mounts, str(SECRETS_DIR))]["projected"]["sources"]
    keys = {item["key"] for source in secrets for item in source["secret"]["items"]}
    assert keys == {"STREAMKAP_CLIENT_ID", "STREAMKAP_SECRET"}  # Vault: a login, no token
    manifests = volumes[_mounted_at(mounts, "/manifests")]
    assert manifests["configMap"]["name"] == by_kind("ConfigMap")["metadata"]["name"]
    assert mounts[manifests["name"]]["readOnly"] is True


@pytest.mark.parametrize(("kind", "spec"), list(pod_specs()))
def test_args_parse_and_every_written_path_is_on_a_writable_volume(
    kind: str, spec: dict[str, Any]
) -> None:
    container = provisioner_container(spec)
    args = build_parser().parse_args(container["args"])  # a mistyped flag exits here
    volumes = {v["name"]: v for v in spec["volumes"]}
    writable = [
        m["mountPath"]
        for m in container["volumeMounts"]
        if "emptyDir" in volumes[m["name"]] and not m.get("readOnly")
    ]
    for path in (args.report, getattr(args, "metrics_file", None)):
        if path is not None:
            assert any(str(path).startswith(f"{mount}/") for mount in writable), path
    assert "/work" in writable  # the image's working directory: relative sink paths land there


@pytest.mark.parametrize(("kind", "spec"), list(pod_specs()))
def test_pods_log_in_to_vault_with_their_service_account(kind: str, spec: dict[str, Any]) -> None:
    """The configmap's vault sink logs in with Kubernetes; its JWT is mounted where it looks."""
    [sink] = [
        sink
        for document in embedded_manifests()
        for sink in document["sinks"].values()
        if sink["type"] == "vault"
    ]
    assert sink["auth"] == {"method": "kubernetes", "role": "streamkap-provisioner"}
    account = by_kind("ServiceAccount")
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False
    container = provisioner_container(spec)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    jwt_file = Path(SERVICE_ACCOUNT_TOKEN)
    name = _mounted_at(mounts, str(jwt_file.parent))
    assert mounts[name]["readOnly"] is True
    [source] = volumes[name]["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["path"] == jwt_file.name
    assert token["audience"] == "vault"
    assert token["expirationSeconds"] <= 3600


def test_settings_read_secrets_mounted_the_way_the_kubelet_does(tmp_path: Path) -> None:
    """Projected volumes hold symlinks into a `..data` directory that is swapped on update."""
    data = tmp_path / "..2025_01_01_00_00_00.000000001"
    data.mkdir()
    values = {"STREAMKAP_CLIENT_ID": "cid", "STREAMKAP_SECRET": "s3", "VAULT_TOKEN": "hvs.x"}
    for name, value in values.items():
        (data / name).write_text(value)
        (tmp_path / name).symlink_to(Path("..data") / name)
    (tmp_path / "..data").symlink_to(data.name)
    settings = Settings(_secrets_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.client_id == "cid"
    assert settings.secret is not None
    assert settings.secret.get_secret_value() == "s3"
    assert settings.vault_token is not None
    assert settings.vault_token.get_secret_value() == "hvs.x"


def test_manifests_load_from_a_directory_laid_out_like_a_configmap_volume(tmp_path: Path) -> None:
    data = tmp_path / "..2025_01_01_00_00_00.000000001"
    data.mkdir()
    (data / "local.yaml").write_text(
        "version: 1\nsinks:\n  s: {type: file, path: ./secrets}\n"
        "services:\n  - name: a\n    credentials:\n"
        "      - {name: one, sinks: [s], roles: [Admin]}\n"
    )
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "local.yaml").symlink_to(Path("..data") / "local.yaml")
    manifests = load_manifests([tmp_path])
    assert [c.key for c in manifests.credentials] == ["a/one"]


def embedded_manifests() -> list[dict[str, Any]]:
    return [yaml.safe_load(text) for text in by_kind("ConfigMap")["data"].values()]


def test_configmap_manifests_match_the_manifest_schema() -> None:
    validator = jsonschema.Draft202012Validator(manifest_schema())
    for document in embedded_manifests():
        assert [error.message for error in validator.iter_errors(document)] == []


def test_configmap_manifests_validate(tmp_path: Path) -> None:
    for name, text in by_kind("ConfigMap")["data"].items():
        (tmp_path / name).write_text(text)
    assert load_manifests([tmp_path]).credentials


def dockerfile_uid() -> int:
    found = re.search(r"^USER (\d+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def _mounted_at(mounts: dict[str, dict[str, Any]], path: str) -> str:
    [name] = [name for name, mount in mounts.items() if mount["mountPath"] == path]
    return name


def test_no_file_embeds_a_secret_value() -> None:
    """Only references: no Secret object, no literal token or password anywhere."""
    assert "Secret" not in {doc["kind"] for doc in documents()}
    for path in FILES:
        assert not re.search(r"(?i)(secret|token|password)\s*:\s*['\"]?\w{8,}", path.read_text())


def test_the_role_lets_the_pods_service_account_manage_secrets_in_its_namespace() -> None:
    """rbac.yaml: what the kubernetes sink needs, bound to the account both pods run as."""
    role, binding = by_kind("Role"), by_kind("RoleBinding")
    [rule] = role["rules"]
    assert (rule["apiGroups"], rule["resources"]) == ([""], ["secrets"])
    assert set(rule["verbs"]) == {"get", "list", "create", "update", "patch", "delete"}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    [subject] = binding["subjects"]
    account = by_kind("ServiceAccount")["metadata"]["name"]
    assert (subject["kind"], subject["name"]) == ("ServiceAccount", account)
    for _, spec in pod_specs():
        assert spec["serviceAccountName"] == account
