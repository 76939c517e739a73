"""Every sink type stores a project key's record and reads it back (issue 20, "Sinks").

Each sink runs against its real counterpart: files on disk (read by json, python-dotenv and
bash), the Vault stub, moto's Secrets Manager server (read by boto3) and the Kubernetes Secrets
stub on a socket (read by the official client).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from dotenv import dotenv_values
from pydantic import SecretStr

from provisioner.errors import ManifestError, SinkError
from provisioner.manifest import load_manifests
from provisioner.model import KafkaLogin, SinkRecord
from provisioner.simulator import VAULT_ROOT_TOKEN, VaultState, create_vault_app
from provisioner.sinks.aws import SecretsManagerOptions, SecretsManagerSink
from provisioner.sinks.base import NOTHING, Sink, SinkContext
from provisioner.sinks.env import EnvSink, EnvSinkOptions
from provisioner.sinks.file import FileSink, FileSinkOptions
from provisioner.sinks.kubernetes import KubernetesSink, KubernetesSinkOptions
from provisioner.sinks.vault import VaultSink, VaultSinkOptions
from tests.conftest import WriteManifest
from tests.support.aws_support import ServedAws, served_aws
from tests.support.factories import no_sleep
from tests.support.kube_support import ServedKube, register_in_process
from tests.support.shell import bash_value

pytestmark = pytest.mark.anyio

SERVICE, CREDENTIAL = "payments-api", "reader"
ENV_STEM = "STREAMKAP_PAYMENTS_API_READER_"
API_SECRET = "api-Secret-Do-Not-Print-1"
KAFKA_PASSWORD = "kafka-Pw_Do-Not-Print-0123456789abcdefXYZ"
KINDS = ["file", "env", "vault", "aws", "kubernetes"]


def login(password: str = KAFKA_PASSWORD, username: str = "payments-reader-a1") -> KafkaLogin:
    return KafkaLogin(
        username=username,
        password=SecretStr(password),
        bootstrap_servers="broker-1.example:9092,broker-2.example:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        schema_registry_url="https://schema.example",
    )


def api_and_kafka(project_key_id: str = "pk-1") -> SinkRecord:
    return SinkRecord(
        service=SERVICE,
        credential=CREDENTIAL,
        client_id=f"api-{project_key_id}",
        secret=SecretStr(API_SECRET),
        description="Reads the payments topics",
        role_ids=("role-1",),
        created_at="2026-01-02T03:04:05+00:00",
        project_key_id=project_key_id,
        kafka=login(),
    )


def kafka_only(project_key_id: str = "pk-2") -> SinkRecord:
    return SinkRecord(
        service=SERVICE,
        credential=CREDENTIAL,
        client_id=None,
        secret=None,
        project_key_id=project_key_id,
        kafka=login(password=KAFKA_PASSWORD + "-2", username="payments-reader-b2"),
    )


@dataclass
class Harness:
    """One sink type: opens its sinks (with or without `fields`) and reads what they stored."""

    kind: str
    make: Callable[[dict[str, str] | None], Sink]
    raw: Callable[[], dict[str, object] | None]  # the stored object, read by another client
    opened: list[Sink] = field(default_factory=list)

    def open(self, fields: dict[str, str] | None = None) -> Sink:
        sink = self.make(fields)
        self.opened.append(sink)
        return sink

    def kept(self, record: SinkRecord) -> SinkRecord:
        """What the sink's default layout keeps of a record: a dotenv file only its variables."""
        if self.kind != "env":
            return record
        kafka = record.kafka
        if kafka is not None:  # the login and the brokers; not the protocol, mechanism, registry
            kafka = KafkaLogin(kafka.username, kafka.password, kafka.bootstrap_servers)
        return replace(
            record,
            description=None,
            role_ids=(),
            permission_ids=(),
            created_at=None,
            kafka=kafka,
        )


@pytest.fixture
def aws_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ServedAws]:
    with served_aws() as server:
        for name, value in server.env(tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield server


def _file(tmp_path: Path) -> Harness:
    def make(fields: dict[str, str] | None) -> Sink:
        return FileSink("f", FileSinkOptions(path="s", fields=fields), SinkContext(cwd=tmp_path))

    def raw() -> dict[str, object] | None:
        path = tmp_path / "s" / SERVICE / f"{CREDENTIAL}.json"
        return json.loads(path.read_text()) if path.exists() else None

    return Harness("file", make, raw)


def _env(tmp_path: Path) -> Harness:
    path = tmp_path / "secrets.env"

    def make(fields: dict[str, str] | None) -> Sink:
        options = EnvSinkOptions(path="secrets.env", fields=fields)
        return EnvSink("e", options, SinkContext(cwd=tmp_path))

    def raw() -> dict[str, object] | None:
        values = dotenv_values(path) if path.exists() else {}
        ours = {k.removeprefix(ENV_STEM): v for k, v in values.items() if k.startswith(ENV_STEM)}
        for suffix, value in ours.items():  # bash reads every value as python-dotenv does
            assert bash_value(path, ENV_STEM + suffix) == value
        return dict(ours) or None

    return Harness("env", make, raw)


def _vault() -> Harness:
    state = VaultState()

    def make(fields: dict[str, str] | None) -> Sink:
        options = VaultSinkOptions(
            address="https://vault.example:8200", mount="secret", prefix="streamkap", fields=fields
        )
        context = SinkContext(
            cwd=Path.cwd(),
            environ={"VAULT_TOKEN": VAULT_ROOT_TOKEN},
            transport=httpx.ASGITransport(app=create_vault_app(state)),
            max_attempts=3,
        )
        return VaultSink("vault", options, context, sleep=no_sleep)

    def raw() -> dict[str, object] | None:
        found: dict[str, object] | None = state.secret(f"streamkap/{SERVICE}/{CREDENTIAL}")
        return found

    return Harness("vault", make, raw)


def _aws(server: ServedAws) -> Harness:
    def make(fields: dict[str, str] | None) -> Sink:
        context = SinkContext(cwd=Path(), timeout=30, max_attempts=3)
        options = SecretsManagerOptions(prefix="streamkap/", fields=fields)
        return SecretsManagerSink("sm", options, context, sleep=no_sleep)

    def raw() -> dict[str, object] | None:
        client = server.boto3()
        try:
            text = client.get_secret_value(
                SecretId=f"streamkap/{SERVICE}/{CREDENTIAL}", VersionStage="AWSCURRENT"
            )
        except client.exceptions.ResourceNotFoundException:
            return None
        except client.exceptions.InvalidRequestException:  # deleted, in its recovery window
            return None
        found: dict[str, object] = json.loads(text["SecretString"])
        return found

    return Harness("aws", make, raw)


def _kubernetes(kube: ServedKube) -> Harness:
    register_in_process()

    def make(fields: dict[str, str] | None) -> Sink:
        context = SinkContext(
            cwd=kube.kubeconfig.parent, environ={"KUBECONFIG": str(kube.kubeconfig)}
        )
        options = KubernetesSinkOptions(namespace="payments", fields=fields)
        return KubernetesSink("k8s", options, context, sleep=no_sleep)

    def raw() -> dict[str, object] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            secret = kube.official().read_namespaced_secret(
                "streamkap-payments-api-reader", "payments"
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    return Harness("kubernetes", make, raw)


@pytest.fixture(params=KINDS)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    kind = request.param
    if kind == "file":
        made = _file(tmp_path)
    elif kind == "env":
        made = _env(tmp_path)
    elif kind == "vault":
        made = _vault()
    elif kind == "aws":
        made = _aws(request.getfixturevalue("aws_server"))
    else:
        made = _kubernetes(request.getfixturevalue("kube"))
    yield made
    for sink in made.opened:
        await sink.aclose()


def _stored_record(harness: Harness, record: SinkRecord) -> dict[str, object]:
    """The stored object a sink without `fields` makes of a record (other clients' view)."""
    document = record.to_document()
    if harness.kind == "env":
        names = {
            "client_id": "CLIENT_ID",
            "secret": "SECRET",
            "project_key_id": "PROJECT_KEY_ID",
            "kafka_username": "KAFKA_USERNAME",
            "kafka_password": "KAFKA_PASSWORD",
            "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
        }
        return {out: document[name] for name, out in names.items() if name in document}
    if harness.kind == "kubernetes":  # text values, lists as JSON, None left out
        return {
            k: v if isinstance(v, str) else json.dumps(v)
            for k, v in document.items()
            if v is not None
        }
    return document


@pytest.mark.parametrize("make_record", [api_and_kafka, kafka_only], ids=["api+kafka", "kafka"])
async def test_a_project_key_record_is_stored_and_read_back_whole(
    harness: Harness, make_record: Callable[[], SinkRecord]
) -> None:
    record = make_record()
    sink = harness.open()
    assert await sink.write(record) == NOTHING
    assert harness.raw() == _stored_record(harness, record)
    fresh = harness.open()  # nothing remembered from the write
    assert await fresh.read(SERVICE, CREDENTIAL) == record.project_key_id
    found = await fresh.read_record(SERVICE, CREDENTIAL)
    assert found == harness.kept(record)  # SecretStr and KafkaLogin compare their secrets
    assert found is not None
    assert found.identity == record.project_key_id
    if record.client_id is None:
        assert (found.client_id, found.secret) == (None, None)


async def test_a_replacement_is_undone_and_deleted_by_identity(harness: Harness) -> None:
    sink = harness.open()
    first, second = api_and_kafka("pk-1"), kafka_only("pk-2")
    await sink.write(first)
    previous = await sink.write(second)
    assert previous.client_id == "pk-1"  # the identity it replaced, not the API client id
    assert await sink.read(SERVICE, CREDENTIAL) == "pk-2"

    await sink.restore(SERVICE, CREDENTIAL, "api-pk-1", previous)  # not the identity held
    assert await sink.read(SERVICE, CREDENTIAL) == "pk-2"
    await sink.restore(SERVICE, CREDENTIAL, "pk-2", previous)
    assert await harness.open().read_record(SERVICE, CREDENTIAL) == harness.kept(first)
    assert harness.raw() == _stored_record(harness, first)  # exactly as before: nothing stale

    await sink.delete(SERVICE, CREDENTIAL, "api-pk-1")  # the API client id is not its identity
    assert await harness.open().read(SERVICE, CREDENTIAL) == "pk-1"
    await sink.delete(SERVICE, CREDENTIAL, "pk-1")
    assert await harness.open().read(SERVICE, CREDENTIAL) is None
    assert harness.raw() is None


async def test_undoing_a_first_write_of_a_kafka_only_key_leaves_nothing(
    harness: Harness,
) -> None:
    sink = harness.open()
    previous = await sink.write(kafka_only())
    await sink.restore(SERVICE, CREDENTIAL, "pk-2", previous)
    assert await harness.open().read(SERVICE, CREDENTIAL) is None
    assert harness.raw() is None


KAFKA_MAPPING = {
    "KEY_ID": "project_key_id",
    "SASL_USER": "kafka_username",
    "SASL_PASSWORD": "kafka_password",
    "BROKERS": "kafka_bootstrap_servers",
    "CLIENT_PROPERTIES": "kafka_properties",
}


async def test_a_mapping_holds_the_kafka_password_and_the_client_properties(
    harness: Harness,
) -> None:
    record = kafka_only()
    assert record.kafka is not None
    sink = harness.open(KAFKA_MAPPING)
    await sink.write(record)
    assert harness.raw() == {
        "KEY_ID": "pk-2",
        "SASL_USER": "payments-reader-b2",
        "SASL_PASSWORD": KAFKA_PASSWORD + "-2",
        "BROKERS": "broker-1.example:9092,broker-2.example:9092",
        "CLIENT_PROPERTIES": record.kafka.properties(),  # four lines, exactly
    }
    found = await harness.open(KAFKA_MAPPING).read_record(SERVICE, CREDENTIAL)
    assert found is not None
    assert found.identity == "pk-2"
    assert found.kafka is not None
    assert (found.kafka.username, found.kafka.password, found.kafka.bootstrap_servers) == (
        record.kafka.username,
        record.kafka.password,
        record.kafka.bootstrap_servers,
    )
    assert found.kafka.properties() == record.kafka.properties()  # derived, never read back
    await sink.delete(SERVICE, CREDENTIAL, "pk-2")
    assert harness.raw() is None


async def test_a_mapping_of_the_api_access_leaves_it_out_for_a_kafka_only_key(
    harness: Harness,
) -> None:
    fields = {"CID": "client_id", "SEC": "secret", "PKID": "project_key_id", **KAFKA_MAPPING}
    fields.pop("KEY_ID")
    sink = harness.open(fields)
    await sink.write(api_and_kafka("pk-1"))
    stored = harness.raw()
    assert stored is not None
    assert (stored["CID"], stored["SEC"], stored["PKID"]) == ("api-pk-1", API_SECRET, "pk-1")
    await sink.write(kafka_only("pk-2"))
    stored = harness.raw()
    assert stored is not None
    assert "CID" not in stored  # absent, never empty: the key has no API access
    assert "SEC" not in stored
    assert stored["PKID"] == "pk-2"
    found = await harness.open(fields).read_record(SERVICE, CREDENTIAL)
    assert found is not None
    assert (found.identity, found.client_id, found.secret) == ("pk-2", None, None)


async def test_a_mapped_client_credential_reads_back_by_client_id(harness: Harness) -> None:
    """A mapping with both pairs still holds client credentials (no project key id)."""
    fields = {"CID": "client_id", "SEC": "secret", "PKID": "project_key_id"}
    sink = harness.open(fields)
    record = SinkRecord(SERVICE, CREDENTIAL, "cid-7", SecretStr(API_SECRET))
    await sink.write(record)
    assert harness.raw() == {"CID": "cid-7", "SEC": API_SECRET}
    assert await harness.open(fields).read(SERVICE, CREDENTIAL) == "cid-7"
    found = await harness.open(fields).read_record(SERVICE, CREDENTIAL)
    assert found is not None
    assert (found.identity, found.project_key_id, found.kafka) == ("cid-7", None, None)


# --- kafka_properties ----------------------------------------------------------------------


def java_properties(text: str) -> dict[str, str]:
    """Lines as a Java `.properties` reader splits them: the key up to the first `=`."""
    return dict(line.split("=", 1) for line in text.splitlines())


def jaas_options(config: str) -> dict[str, str]:
    """A JAAS entry's `name="value"` options, unquoted as JAAS reads them."""
    found = re.findall(r'(\w+)="((?:\\.|[^"\\])*)"', config)
    return {name: re.sub(r"\\(.)", r"\1", value) for name, value in found}


@pytest.mark.parametrize("password", [KAFKA_PASSWORD, 'with "quotes" and \\ = signs'])
async def test_kafka_properties_are_the_four_client_lines(tmp_path: Path, password: str) -> None:
    record = replace(kafka_only(), kafka=login(password=password))
    sink = FileSink("f", FileSinkOptions(path="s"), SinkContext(cwd=tmp_path))
    await sink.write(record)
    stored = json.loads((tmp_path / "s" / SERVICE / f"{CREDENTIAL}.json").read_text())
    properties = java_properties(stored["kafka_properties"])
    assert list(properties) == [
        "bootstrap.servers",
        "security.protocol",
        "sasl.mechanism",
        "sasl.jaas.config",
    ]
    assert properties["bootstrap.servers"] == "broker-1.example:9092,broker-2.example:9092"
    assert properties["security.protocol"] == "SASL_SSL"
    assert properties["sasl.mechanism"] == "PLAIN"
    config = properties["sasl.jaas.config"]
    assert config.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert config.endswith(";")
    assert jaas_options(config) == {"username": "payments-reader-a1", "password": password}


# --- env: variables of a project key ---------------------------------------------------------


def env_sink(tmp_path: Path, path: str = "secrets.env", **options: Any) -> EnvSink:
    return EnvSink("e", EnvSinkOptions(path=path, **options), SinkContext(cwd=tmp_path))


async def test_env_replacing_a_kafka_record_by_an_api_only_one_removes_the_kafka_variables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("BEFORE=1\n")
    sink = env_sink(tmp_path)
    await sink.write(api_and_kafka("pk-1"))
    api_only = replace(api_and_kafka("pk-3"), kafka=None)
    previous = await sink.write(api_only)
    assert path.read_text() == (
        "BEFORE=1\n"
        f"{ENV_STEM}CLIENT_ID='api-pk-3'\n"
        f"{ENV_STEM}SECRET='{API_SECRET}'\n"
        f"{ENV_STEM}PROJECT_KEY_ID='pk-3'\n"
    )
    await sink.restore(SERVICE, CREDENTIAL, "pk-3", previous)  # exactly the variables before
    assert dotenv_values(path) == {
        "BEFORE": "1",
        f"{ENV_STEM}CLIENT_ID": "api-pk-1",
        f"{ENV_STEM}SECRET": API_SECRET,
        f"{ENV_STEM}PROJECT_KEY_ID": "pk-1",
        f"{ENV_STEM}KAFKA_USERNAME": "payments-reader-a1",
        f"{ENV_STEM}KAFKA_PASSWORD": KAFKA_PASSWORD,
        f"{ENV_STEM}KAFKA_BOOTSTRAP_SERVERS": "broker-1.example:9092,broker-2.example:9092",
    }


async def test_env_replacing_an_api_record_by_a_kafka_only_one_removes_the_api_variables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secrets.env"
    sink = env_sink(tmp_path)
    await sink.write(SinkRecord(SERVICE, CREDENTIAL, "cid-1", SecretStr(API_SECRET)))
    previous = await sink.write(kafka_only("pk-2"))
    assert previous.client_id == "cid-1"
    assert sorted(dotenv_values(path)) == [
        f"{ENV_STEM}KAFKA_BOOTSTRAP_SERVERS",
        f"{ENV_STEM}KAFKA_PASSWORD",
        f"{ENV_STEM}KAFKA_USERNAME",
        f"{ENV_STEM}PROJECT_KEY_ID",
    ]
    await sink.restore(SERVICE, CREDENTIAL, "pk-2", previous)
    assert path.read_text() == f"{ENV_STEM}CLIENT_ID='cid-1'\n{ENV_STEM}SECRET='{API_SECRET}'\n"


async def test_env_on_stdout_prints_the_variables_the_record_has(tmp_path: Path) -> None:
    out = io.StringIO()
    sink = EnvSink("e", EnvSinkOptions(path="-"), SinkContext(cwd=tmp_path), stdout=out)
    await sink.write(kafka_only("pk-2"))
    assert out.getvalue() == (
        f"{ENV_STEM}PROJECT_KEY_ID='pk-2'\n"
        f"{ENV_STEM}KAFKA_USERNAME='payments-reader-b2'\n"
        f"{ENV_STEM}KAFKA_PASSWORD='{KAFKA_PASSWORD}-2'\n"
        f"{ENV_STEM}KAFKA_BOOTSTRAP_SERVERS='broker-1.example:9092,broker-2.example:9092'\n"
    )


def test_env_record_names_cover_every_variable_a_credential_may_set() -> None:
    assert EnvSinkOptions(path="x.env").record_names("s", "x") == (
        "STREAMKAP_S_X_CLIENT_ID",
        "STREAMKAP_S_X_SECRET",
        "STREAMKAP_S_X_PROJECT_KEY_ID",
        "STREAMKAP_S_X_KAFKA_USERNAME",
        "STREAMKAP_S_X_KAFKA_PASSWORD",
        "STREAMKAP_S_X_KAFKA_BOOTSTRAP_SERVERS",
    )


def test_env_variables_of_two_credentials_that_collide_are_refused(
    write_manifest: WriteManifest,
) -> None:
    """`x`'s Kafka password and `x-kafka`'s client secret would share one variable."""
    path = write_manifest(
        "a.yaml",
        "version: 1\n"
        "defaults: {roles: [admin], sinks: [dotenv]}\n"
        "sinks:\n"
        "  dotenv:\n"
        "    type: env\n"
        "    path: ./x.env\n"
        "    fields: {ID: client_id, SECRET: secret, PK: project_key_id,"
        " KAFKA_SECRET: kafka_password}\n"
        "services:\n"
        "  - name: s\n"
        "    credentials:\n"
        "      - name: x\n"
        "      - name: x-kafka\n",
    )
    with pytest.raises(ManifestError) as caught:
        load_manifests([path])
    assert any(
        "'s/x-kafka' and 's/x'" in problem and "STREAMKAP_S_X_KAFKA_SECRET" in problem
        for problem in caught.value.problems
    ), caught.value.problems


def test_env_does_not_refuse_a_project_keys_fields() -> None:
    options = EnvSinkOptions(path="x.env", fields={"PK": "project_key_id", **KAFKA_MAPPING})
    assert options.unstorable(kafka_only()) == {}
    assert EnvSinkOptions(path="x.env").unstorable(api_and_kafka()) == {}


async def test_env_refuses_an_unquotable_kafka_password_without_printing_it(
    tmp_path: Path,
) -> None:
    password = "it's $5 and-long-enough"
    sink = env_sink(tmp_path)
    with pytest.raises(SinkError, match="cannot store the kafka password of") as caught:
        await sink.write(replace(kafka_only(), kafka=login(password=password)))
    assert password not in str(caught.value)
    assert not (tmp_path / "secrets.env").exists()
