"""Issue 20, the manifest side of Project Keys: `kind`, `kafka`, `mcp` and `grace_max` load into
DesiredCredentials, and every misuse is reported in one pass with file, line and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests, manifest_schema
from provisioner.manifest.stored import StoredNames
from provisioner.model import (
    KAFKA_FIELDS,
    AclEntry,
    CredentialKind,
    DesiredCredential,
    KafkaAccess,
    McpScope,
    Origin,
)
from provisioner.sinks import SinkDefinition
from provisioner.sinks.file import FileSinkOptions
from tests.conftest import WriteManifest

MIXED = """\
version: 1
defaults:
  kind: project-key
  sinks: [local]
  grace: 30m
  grace_max: 7d
sinks:
  local: {type: file, path: ./secrets}
services:
  - name: orders
    credentials:
      - name: admin
        kind: client-credential
        roles: [Admin]
        grace_max: 2h
      - name: api
        roles: [Read Only]
      - name: stream
        permissions: [perm-1]
        kafka:
          acls:
            - {topic: orders., pattern: Prefixed, operations: [read, Describe]}
            - {group: orders-reader, operations: [READ]}
          allow_ips: [10.1.2.3/8, 192.0.2.7, " 2001:db8::1/32 "]
          schema_registry: true
          username: orders-reader
      - name: kafka-only
        kafka:
          acls:
            - {topic: payments, operations: [all]}
      - name: agent
        roles: [Read Only]
        mcp: {profile: read-only, allow: [list_pipelines], block: [delete_pipeline]}
        grace: 1h
"""


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifests(list(paths))
    return list(caught.value.problems)


def by_name(path: Path) -> dict[str, DesiredCredential]:
    return {c.name: c for c in load_manifests([path]).credentials}


def test_a_mixed_manifest_loads_each_kind_of_credential(write_manifest: WriteManifest) -> None:
    found = by_name(write_manifest("a.yaml", MIXED))
    admin, api, stream = found["admin"], found["api"], found["stream"]
    kafka_only, agent = found["kafka-only"], found["agent"]

    assert admin.kind is CredentialKind.CLIENT_CREDENTIAL
    assert (admin.roles, admin.kafka, admin.mcp) == (("Admin",), None, None)
    assert admin.grace_max == timedelta(hours=2)  # its own over the default

    assert api.kind is CredentialKind.PROJECT_KEY  # from defaults
    assert (api.roles, api.kafka, api.mcp, api.wants_api) == (("Read Only",), None, None, True)
    assert api.grace_max == timedelta(days=7)

    assert stream.kind is CredentialKind.PROJECT_KEY
    assert stream.permission_ids == ("perm-1",)
    assert stream.kafka == KafkaAccess(
        acls=frozenset(
            {
                AclEntry("TOPIC", "orders.", "PREFIXED", "READ"),
                AclEntry("TOPIC", "orders.", "PREFIXED", "DESCRIBE"),
                AclEntry("GROUP", "orders-reader", "LITERAL", "READ"),
            }
        ),
        allow_ips=frozenset({"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}),
        schema_registry=True,
        username="orders-reader",
    )

    assert kafka_only.kind is CredentialKind.PROJECT_KEY
    assert (kafka_only.roles, kafka_only.permission_ids, kafka_only.wants_api) == ((), (), False)
    assert kafka_only.kafka == KafkaAccess(
        acls=frozenset({AclEntry("TOPIC", "payments", "LITERAL", "ALL")})
    )
    assert kafka_only.mcp is None

    assert agent.kafka is None
    assert agent.mcp == McpScope(
        profile="read-only",
        allow=frozenset({"list_pipelines"}),
        block=frozenset({"delete_pipeline"}),
    )
    assert (agent.grace, agent.grace_max) == (timedelta(hours=1), timedelta(days=7))


def test_without_kind_a_credential_is_a_client_credential(write_manifest: WriteManifest) -> None:
    text = "version: 1\ndefaults: {roles: [Admin], sinks: [l]}\nsinks: {l: {type: file, path: s}}\n"
    text += "services:\n  - name: api\n    credentials:\n      - name: a\n"
    (credential,) = load_manifests([write_manifest("a.yaml", text)]).credentials
    assert credential.kind is CredentialKind.CLIENT_CREDENTIAL
    assert (credential.kafka, credential.mcp, credential.grace_max) == (None, None, None)


def one_key(body: str, defaults: str = "sinks: [local]") -> str:
    """A manifest of one credential `orders/stream` whose fields are `body` (indented 8)."""
    lines = "".join(f"        {line}\n" for line in body.splitlines())
    return (
        f"version: 1\ndefaults: {{{defaults}}}\n"
        "sinks:\n  local: {type: file, path: ./secrets}\n"
        "services:\n  - name: orders\n    credentials:\n      - name: stream\n" + lines
    )


AT = "services[orders].credentials[stream]"


def test_an_unknown_kind_names_both_allowed_values(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", one_key("kind: project_key\nroles: [Admin]"))
    assert problems_of(path) == [
        f'{path}:9: {AT}.kind: unknown kind "project_key": expected client-credential or '
        "project-key"
    ]
    path = write_manifest("b.yaml", one_key("roles: [Admin]", "sinks: [local], kind: key"))
    assert problems_of(path) == [
        f'{path}:2: defaults.kind: unknown kind "key": expected client-credential or project-key'
    ]


@pytest.mark.parametrize(
    ("acl", "message"),
    [
        (
            "{topic: t, group: g, operations: [READ]}",
            "kafka.acls[0]: give one of `topic:` or `group:` per entry (both given)",
        ),
        (
            "{operations: [READ]}",
            "kafka.acls[0]: give one of `topic:` or `group:` per entry (neither given)",
        ),
        (
            "{group: g, operations: [read, Write, ALTER]}",
            "kafka.acls[0].operations: 'Write', 'ALTER' not valid for a group: expected "
            "DELETE, DESCRIBE, READ",
        ),
        (
            "{topic: t, operations: [REED]}",
            "kafka.acls[0].operations: 'REED' not valid for a topic: expected ALL, ALTER, "
            "ALTER_CONFIGS, CREATE, DELETE, DESCRIBE, DESCRIBE_CONFIGS, READ, WRITE",
        ),
        (
            "{topic: t, operations: []}",
            "kafka.acls[0].operations: must name at least one operation",
        ),
        ("{topic: t}", "kafka.acls[0].operations: required field is missing"),
        ("{topic: '', operations: [READ]}", "kafka.acls[0].topic: must not be empty"),
        (
            "{topic: t, pattern: glob, operations: [READ]}",
            "kafka.acls[0].pattern: unknown pattern 'glob': expected literal or prefixed",
        ),
        (
            "{topic: t, operations: [READ], topics: x}",
            "kafka.acls[0].topics: unknown field; did you mean 'topic'?",
        ),
    ],
)
def test_a_wrong_acl_entry_is_reported_where_it_is(
    write_manifest: WriteManifest, acl: str, message: str
) -> None:
    path = write_manifest("a.yaml", one_key(f"kind: project-key\nkafka:\n  acls:\n    - {acl}"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:12: {AT}.{message}")


def test_acl_case_is_as_users_type_it_and_each_operation_is_an_entry(
    write_manifest: WriteManifest,
) -> None:
    body = (
        "kind: project-key\nkafka:\n  acls:\n"
        "    - {topic: Orders, pattern: LITERAL, operations: [alter_configs, Describe_Configs]}\n"
        "    - {group: g, pattern: PreFixed, operations: [delete, DELETE, describe]}"
    )
    kafka = by_name(write_manifest("a.yaml", one_key(body)))["stream"].kafka
    assert kafka is not None
    assert sorted(kafka.acls) == [
        AclEntry("GROUP", "g", "PREFIXED", "DELETE"),
        AclEntry("GROUP", "g", "PREFIXED", "DESCRIBE"),
        AclEntry("TOPIC", "Orders", "LITERAL", "ALTER_CONFIGS"),
        AclEntry("TOPIC", "Orders", "LITERAL", "DESCRIBE_CONFIGS"),
    ]
    assert (kafka.allow_ips, kafka.schema_registry, kafka.username) == (frozenset(), False, None)


def test_allowed_ips_must_parse_and_fit_the_api(write_manifest: WriteManifest) -> None:
    body = "kind: project-key\nkafka:\n  allow_ips: [10.0.0.0/8, 10.0.0.300, host.example]"
    path = write_manifest("a.yaml", one_key(body))
    assert problems_of(path) == [
        f"{path}:11: {AT}.kafka.allow_ips[1]: '10.0.0.300' is not an IP address or network "
        "(such as 10.0.0.0/8 or 192.0.2.7)",
        f"{path}:11: {AT}.kafka.allow_ips[2]: 'host.example' is not an IP address or network "
        "(such as 10.0.0.0/8 or 192.0.2.7)",
    ]
    many = [f"10.0.{i}.1" for i in range(90)]  # 90 * 11-13 characters: > 1000
    path = write_manifest("b.yaml", one_key(f"kind: project-key\nkafka: {{allow_ips: {many}}}"))
    (problem,) = problems_of(path)
    joined = ",".join(f"{ip}/32" for ip in many)
    assert problem == (
        f"{path}:10: {AT}.kafka.allow_ips: {len(joined)} characters joined by commas, but the "
        "API takes at most 1000: use fewer, wider networks"
    )
    fits = many[:60]  # normalised and joined: 60 * 11-13 characters, under 1000
    path = write_manifest("c.yaml", one_key(f"kind: project-key\nkafka: {{allow_ips: {fits}}}"))
    kafka = by_name(path)["stream"].kafka
    assert kafka is not None
    assert len(kafka.allow_ips) == 60


def test_schema_registry_is_a_boolean(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", one_key("kind: project-key\nkafka: {schema_registry: 'yes'}"))
    assert problems_of(path) == [
        f"{path}:10: {AT}.kafka.schema_registry: expected true or false, got a string"
    ]


@pytest.mark.parametrize("username", ["Orders", "-orders", "orders-", "ord_ers", "a" * 20])
def test_a_kafka_username_must_leave_room_for_the_suffix(
    write_manifest: WriteManifest, username: str
) -> None:
    path = write_manifest(
        "a.yaml", one_key(f"kind: project-key\nkafka: {{username: '{username}'}}")
    )
    assert problems_of(path) == [
        f'{path}:10: {AT}.kafka.username: invalid Kafka username "{username}": use lowercase '
        "letters, digits and '-', starting and ending with a letter or digit, at most 19 "
        "characters (the provisioner appends a 5-character suffix)"
    ]


@pytest.mark.parametrize("username", ["a", "a" * 19, "orders-1-reader"])
def test_a_readable_kafka_username_is_kept(write_manifest: WriteManifest, username: str) -> None:
    path = write_manifest("a.yaml", one_key(f"kind: project-key\nkafka: {{username: {username}}}"))
    kafka = by_name(path)["stream"].kafka
    assert kafka is not None
    assert kafka.username == username


def test_two_keys_asking_for_one_kafka_username_are_both_named(
    write_manifest: WriteManifest,
) -> None:
    first = write_manifest("a.yaml", one_key("kind: project-key\nkafka: {username: reader}"))
    second = write_manifest(
        "b.yaml",
        one_key("kind: project-key\nkafka: {username: reader}").replace("orders", "billing"),
    )
    assert problems_of(first, second) == [
        f"{second}:10: services[billing].credentials[stream].kafka.username: 'billing/stream' "
        f"and 'orders/stream' (at {first}:10: {AT}.kafka.username) both ask for Kafka username "
        "'reader': give each its own"
    ]


def test_kafka_and_mcp_on_a_client_credential_name_kind_project_key(
    write_manifest: WriteManifest,
) -> None:
    body = "roles: [Admin]\nkafka: {acls: [{topic: t, operations: [READ]}]}\nmcp: {profile: full}"
    path = write_manifest("a.yaml", one_key(body))
    assert problems_of(path) == [
        f"{path}:10: {AT}.kafka: Kafka access is for project keys: add `kind: project-key` "
        "(a client credential has API access only)",
        f"{path}:11: {AT}.mcp: MCP scoping is for project keys: add `kind: project-key` "
        "(a client credential has API access only)",
    ]


def test_mcp_scoping_needs_api_access(write_manifest: WriteManifest) -> None:
    body = "kind: project-key\nkafka: {}\nmcp: {profile: read-only}"
    path = write_manifest("a.yaml", one_key(body))
    assert problems_of(path) == [
        f"{path}:11: {AT}.mcp: MCP scoping needs API access: MCP is reached with the key's API "
        "credential; give `roles` or `permissions`"
    ]
    path = write_manifest("b.yaml", one_key("kind: project-key\nmcp: {profile: full}"))
    assert problems_of(path) == [
        f"{path}:10: {AT}.mcp: MCP scoping needs API access: MCP is reached with the key's API "
        "credential; give `roles` or `permissions`"
    ]


def test_an_mcp_profile_is_one_of_four(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", one_key("kind: project-key\nroles: [A]\nmcp: {profile: all}"))
    assert problems_of(path) == [
        f'{path}:11: {AT}.mcp.profile: unknown profile "all": expected full, read-only, '
        "agent-operator or infra-admin"
    ]


def test_a_project_key_needs_a_capability_and_not_both_accesses(
    write_manifest: WriteManifest,
) -> None:
    path = write_manifest("a.yaml", one_key("kind: project-key\ndescription: nothing"))
    assert problems_of(path) == [
        f"{path}:8: {AT}: no capability: a project key needs API access (`roles` or "
        "`permissions`, here or in `defaults`) or Kafka access (`kafka:`)"
    ]
    path = write_manifest(
        "b.yaml", one_key("kind: project-key\nroles: [A]\npermissions: [p]\nkafka: {}")
    )
    assert problems_of(path) == [
        f"{path}:11: {AT}.permissions: give roles or permissions, not both: the API refuses a "
        "credential with both"
    ]


def test_a_project_key_inherits_api_access_from_defaults(write_manifest: WriteManifest) -> None:
    path = write_manifest(
        "a.yaml", one_key("kafka: {}", "sinks: [local], kind: project-key, roles: [Reader]")
    )
    stream = by_name(path)["stream"]
    assert (stream.roles, stream.kafka) == (("Reader",), KafkaAccess())


def test_a_project_key_name_longer_than_the_api_takes_is_refused(
    write_manifest: WriteManifest,
) -> None:
    service, credential = "s" * 60, "c" * 40  # 60 + 1 + 40 = 101
    text = one_key("kind: project-key\nroles: [A]").replace("orders", service)
    path = write_manifest("a.yaml", text.replace("stream", credential))
    assert problems_of(path) == [
        f"{path}:8: services[{service}].credentials[{credential}].name: a project key's name "
        f"on the API is its key '{service}/{credential}', 101 characters, but the API takes at "
        "most 100: shorten the service or credential name"
    ]
    fits = write_manifest("b.yaml", text.replace("stream", "c" * 39))
    assert len(load_manifests([fits]).credentials[0].key) == 100
    client = write_manifest("c.yaml", text.replace("stream", credential).replace("kind: p", "#"))
    assert len(load_manifests([client]).credentials[0].key) == 101  # only project keys


def test_grace_max_may_not_be_shorter_than_grace(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", one_key("roles: [A]\ngrace: 2d\ngrace_max: 1d"))
    assert problems_of(path) == [
        f"{path}:11: {AT}.grace_max: grace_max 1d is shorter than grace 2d: the old credential "
        "stays live for grace at least; make grace_max as long as grace or longer"
    ]
    path = write_manifest(
        "b.yaml", one_key("roles: [A]", "sinks: [local], grace: 2h, grace_max: 1h")
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: defaults.grace_max: grace_max 1h is shorter than grace")
    path = write_manifest(
        "c.yaml", one_key("roles: [A]\ngrace: 3h", "sinks: [local], grace_max: 1h")
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:10: {AT}.grace: grace_max 1h is shorter than grace 3h")


def test_grace_max_as_long_as_grace_is_kept(write_manifest: WriteManifest) -> None:
    path = write_manifest("a.yaml", one_key("roles: [A]\ngrace: 1d\ngrace_max: 24h"))
    stream = by_name(path)["stream"]
    assert (stream.grace, stream.grace_max) == (timedelta(days=1), timedelta(hours=24))


def test_grace_max_without_a_grace_is_refused(write_manifest: WriteManifest) -> None:
    """Without a grace the old key goes as soon as the new one is delivered: grace_max would
    silently do nothing."""
    path = write_manifest("b.yaml", one_key("kind: project-key\nroles: [A]\ngrace_max: 2w"))
    assert problems_of(path) == [
        f"{path}:11: {AT}.grace_max: grace_max keeps a replaced credential past its grace while "
        "it is still used, but without a grace it goes as soon as the new one is delivered: "
        "give `grace` too"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7", "got a number (7): write a duration such as 90d"),
        ("7x", 'invalid duration "7x": expected a number and a unit (s, m, h, d, w)'),
        ("4000d", "duration '4000d' is longer than 10 years (3650d)"),
    ],
)
def test_grace_max_is_a_duration(write_manifest: WriteManifest, value: str, message: str) -> None:
    path = write_manifest("a.yaml", one_key(f"roles: [A]\ngrace_max: {value}"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:10: {AT}.grace_max: {message}")


def test_every_problem_of_project_keys_is_reported_in_one_pass(
    write_manifest: WriteManifest,
) -> None:
    body = (
        "kind: project-key\nmcp: {profile: full}\ngrace: 2d\ngrace_max: 1d\n"
        "kafka:\n  acls: [{group: g, operations: [WRITE]}]\n  allow_ips: [nowhere]"
    )
    path = write_manifest("a.yaml", one_key(body) + "      - name: other\n        kafka: {}\n")
    problems = problems_of(path)
    # A document with field errors is not flattened: its rules across fields wait for them.
    assert [p.split(": ", 2)[:2] for p in problems] == [
        [f"{path}:14", f"{AT}.kafka.acls[0].operations"],
        [f"{path}:15", f"{AT}.kafka.allow_ips[0]"],
    ]
    fixed = body.replace("WRITE", "READ").replace("nowhere", "10.0.0.1")
    path = write_manifest("b.yaml", one_key(fixed) + "      - name: other\n        kafka: {}\n")
    assert [p.split(": ", 2)[:2] for p in problems_of(path)] == [
        [f"{path}:10", f"{AT}.mcp"],
        [f"{path}:12", f"{AT}.grace_max"],
        [f"{path}:16", "services[orders].credentials[other]"],  # a client credential: no roles
        [f"{path}:17", "services[orders].credentials[other].kafka"],
    ]


# Sinks with `fields`: what a credential's kind must find mapped, and must not.

WHERE = "m.yaml:3: services[orders].credentials[stream]"


def _stored_problems(credential: DesiredCredential, fields: dict[str, str]) -> list[str]:
    # Built past validation: the fields a project key adds are the sinks' to accept.
    options = FileSinkOptions.model_construct(path="s", fields=fields)
    sinks = {"local": SinkDefinition(name="local", type="file", options=options)}
    return StoredNames(sinks, lambda origin: WHERE).problems([credential])


def _desired(**changes: object) -> DesiredCredential:
    base: dict[str, object] = {
        "service": "orders",
        "name": "stream",
        "description": None,
        "service_id": None,
        "roles": ("Admin",),
        "permission_ids": (),
        "sinks": ("local",),
        "rotate_after": None,
        "grace": timedelta(0),
        "origin": Origin("m.yaml", 0, ("services", 0, "credentials", 0)),
        "roles_origin": Origin("m.yaml", 0, ()),
    }
    return DesiredCredential(**{**base, **changes})  # type: ignore[arg-type]


API = {"ID": "client_id", "SECRET": "secret"}
KAFKA = {"USER": "kafka_username", "PASSWORD": "kafka_password"}
KEY = {"KEY_ID": "project_key_id"}


def test_a_project_key_sink_must_map_what_is_read_back() -> None:
    api_and_kafka = _desired(kind=CredentialKind.PROJECT_KEY, kafka=KafkaAccess())
    assert _stored_problems(api_and_kafka, {**API, **KAFKA, **KEY}) == []
    assert _stored_problems(api_and_kafka, {**API, "USER": "kafka_username"}) == [
        f"{WHERE}: sink 'local' does not map project_key_id, kafka_password in `fields`, which "
        "reconciliation reads back of this project key: add them to the sink's `fields`"
    ]
    kafka_only = _desired(kind=CredentialKind.PROJECT_KEY, roles=(), kafka=KafkaAccess())
    assert _stored_problems(kafka_only, {**KAFKA, **KEY}) == []
    api_only = _desired(kind=CredentialKind.PROJECT_KEY)
    assert _stored_problems(api_only, {**API, **KEY}) == []
    (problem,) = _stored_problems(api_only, {**KAFKA, **KEY})
    assert "does not map client_id, secret in `fields`" in problem


def test_a_client_credential_sink_may_not_map_what_it_lacks() -> None:
    fields = {**API, "KEY_ID": "project_key_id", "PROPS": "kafka_properties"}
    assert _stored_problems(_desired(), fields) == [
        f"{WHERE}: sink 'local' maps project_key_id, kafka_properties in `fields`, which a "
        "client credential does not have: use another sink, or `kind: project-key`"
    ]
    assert _stored_problems(_desired(), API) == []


def test_a_sink_without_fields_suits_both_kinds() -> None:
    options = FileSinkOptions(path="s")
    sinks = {"local": SinkDefinition(name="local", type="file", options=options)}
    credential = _desired(kind=CredentialKind.PROJECT_KEY, kafka=KafkaAccess())
    assert StoredNames(sinks, lambda origin: WHERE).problems([credential]) == []


def test_a_manifest_sink_mapping_too_little_for_a_project_key_is_refused(
    write_manifest: WriteManifest,
) -> None:
    text = one_key("kind: project-key\nroles: [A]").replace(
        "{type: file, path: ./secrets}",
        "{type: file, path: ./secrets, fields: {ID: client_id, SECRET: secret}}",
    )
    path = write_manifest("a.yaml", text)
    assert problems_of(path) == [
        f"{path}:8: {AT}: sink 'local' does not map project_key_id in `fields`, which "
        "reconciliation reads back of this project key: add them to the sink's `fields`"
    ]


def test_a_manifest_sink_mapping_a_project_keys_fields_loads(
    write_manifest: WriteManifest,
) -> None:
    mapped = ", ".join(f"{f.upper()}: {f}" for f in ("client_id", "secret", "project_key_id"))
    mapped += ", " + ", ".join(f"{f.upper()}: {f}" for f in KAFKA_FIELDS)
    text = one_key("kind: project-key\nroles: [A]\nkafka: {}").replace(
        "{type: file, path: ./secrets}", f"{{type: file, path: ./secrets, fields: {{{mapped}}}}}"
    )
    assert by_name(write_manifest("a.yaml", text))["stream"].kafka == KafkaAccess()


# The JSON Schema editors check the format with.


def _schema_errors(document: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(manifest_schema())
    return [error.message for error in validator.iter_errors(document)]


def test_the_schema_accepts_the_project_key_manifests() -> None:
    assert _schema_errors(yaml.safe_load(MIXED)) == []
    design = yaml.safe_load(one_key("kind: project-key\nroles: [A]"))
    design["services"][0]["credentials"][0].update(
        kafka={
            "acls": [
                {"topic": "orders.", "pattern": "PREFIXED", "operations": ["READ", "describe"]},
                {"group": "orders-reader", "operations": ["read"]},
            ],
            "allow_ips": ["10.0.0.0/8"],
            "schema_registry": True,
            "username": "orders-reader",
        },
        mcp={"profile": "read-only", "allow": [], "block": ["delete_pipeline"]},
        grace_max="7d",
    )
    assert _schema_errors(design) == []


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "key"},
        {"grace_max": "7x"},
        {"kafka": {"acls": [{"group": "g", "operations": ["WRITE"]}]}},
        {"kafka": {"acls": [{"topic": "t", "group": "g", "operations": ["READ"]}]}},
        {"kafka": {"acls": [{"topic": "t", "operations": ["REED"]}]}},
        {"kafka": {"acls": [{"topic": "t", "pattern": "glob", "operations": ["READ"]}]}},
        {"kafka": {"username": "Orders"}},
        {"kafka": {"schema_registry": "yes"}},
        {"mcp": {"profile": "all"}},
    ],
)
def test_the_schema_refuses_what_validation_refuses(change: dict[str, object]) -> None:
    document = yaml.safe_load(one_key("kind: project-key\nroles: [A]"))
    document["services"][0]["credentials"][0].update(change)
    assert _schema_errors(document) != []


def test_the_readme_example_of_a_service_that_reads_topics_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("### Project keys", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.yaml"
    path.write_text(example, encoding="utf-8")
    (stream,) = load_manifests([path]).credentials
    assert stream.kind is CredentialKind.PROJECT_KEY
    assert stream.kafka is not None
    assert len(stream.kafka.acls) == 3
    assert stream.kafka.schema_registry
    assert stream.mcp == McpScope(profile="read-only", block=frozenset({"delete_pipeline"}))
    assert stream.grace_max == timedelta(days=7)


def test_a_project_keys_description_holds_no_html(write_manifest: WriteManifest) -> None:
    """The API sanitises a key's description as HTML: what it kept would differ every run."""
    text = one_key('kind: project-key\nroles: [A]\ndescription: "<b>Orders</b> & more"')
    path = write_manifest("a.yaml", text)
    assert problems_of(path) == [
        f"{path}:11: {AT}.description: a project key's description may not hold & < >: the "
        "API sanitises it as HTML, so what it keeps would differ from the manifest on every run"
    ]
    plain = one_key('roles: [A]\ndescription: "<b>Orders</b> & more"')  # a client credential
    assert by_name(write_manifest("b.yaml", plain))["stream"].description == "<b>Orders</b> & more"
