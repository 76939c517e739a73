"""Load manifests, validate them entirely (every problem at once), and flatten to desired state."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from provisioner.errors import ManifestError, did_you_mean
from provisioner.manifest import yamlfile
from provisioner.manifest.durations import parse_duration
from provisioner.manifest.format import (
    DEFAULT_SINK,
    FIELD_NAMES,
    NAME_PATTERN,
    SINK_MAP,
    CredentialSpec,
    DefaultsSpec,
    ManifestDocument,
    ServiceSpec,
    SinkSpec,
)
from provisioner.manifest.project_key import MAX_USERNAME
from provisioner.manifest.stored import StoredNames
from provisioner.manifest.yamlfile import TooLarge, YamlFile, YamlProblem, read_yaml, size_text
from provisioner.model import (
    DEFAULT_OWNER,
    CredentialKind,
    DesiredCredential,
    KafkaAccess,
    McpScope,
    Origin,
)
from provisioner.sinks import SinkDefinition, sink_type

T = TypeVar("T")

_NO_GRACE = timedelta(0)  # one object for the many credentials without a grace
#: All manifest files of a run together (`PROVISIONER_MAX_MANIFEST_RUN_BYTES`): 100,000
#: credentials as people write them (~150 bytes each) with room to spare; memory grows with the
#: credentials, not the file count (docs/limits.md).
MAX_TOTAL_BYTES = 32 * 1024 * 1024
#: The longest project key name the API takes; a project key's name is its key.
MAX_PROJECT_KEY_NAME = 100
_DURATIONS = frozenset({"rotate_after", "grace", "grace_max"})


@dataclass(frozen=True)
class Manifests:
    """Validated desired state: credentials in file order, and the sinks they name."""

    credentials: tuple[DesiredCredential, ...]
    sinks: dict[str, SinkDefinition]
    files: dict[str, YamlFile] = field(repr=False, default_factory=dict)
    owner: str = DEFAULT_OWNER  # the top-level `owner` every file that names one agrees on

    def where(self, origin: Origin) -> str:
        """`file:line: field.path` for an origin, as error messages start."""
        return _where(self.files, origin)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; directories become their `*.yaml`/`*.yml` files, sorted."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml"}))
        else:
            out.append(path)
    return out


def load_manifests(
    paths: Sequence[Path],
    cli_sinks: Sequence[SinkDefinition] = (),
    *,
    max_file_bytes: int | None = None,
    max_run_bytes: int | None = None,
) -> Manifests:
    """Read, validate and flatten; raise ManifestError listing every problem found.

    At most `max_file_bytes` are read of one file, `max_run_bytes` of all together (by default
    `yamlfile.MAX_FILE_BYTES` and `MAX_TOTAL_BYTES`).
    """
    loader = _Loader(
        {d.name: d for d in cli_sinks},
        yamlfile.MAX_FILE_BYTES if max_file_bytes is None else max_file_bytes,
        MAX_TOTAL_BYTES if max_run_bytes is None else max_run_bytes,
    )
    files = expand_paths(paths)
    if not files:
        raise ManifestError(["no manifest files found in " + ", ".join(map(str, paths))])
    for path in files:
        loader.add_file(path)
    return loader.finish()


@dataclass(frozen=True, slots=True)
class _Draft:
    """A validated credential, as far as one document tells: the sinks of every file and the
    run's owner are known only once all are read. The document's models are dropped by then."""

    service: str
    name: str
    description: str | None
    service_id: str | None
    roles: tuple[str, ...]
    permission_ids: tuple[str, ...]
    sinks: tuple[str, ...] | None  # as written or inherited; None: the default sink, if any
    sinks_at: Origin
    rotate_after: timedelta | None
    grace: timedelta
    grace_max: timedelta | None
    origin: Origin
    roles_origin: Origin
    problems: tuple[tuple[Origin, str], ...]  # found in the document; reported once sinks are
    kind: CredentialKind
    kafka: KafkaAccess | None
    mcp: McpScope | None


class _Loader:
    """Accumulates documents and problems across files; flattening happens once all are read.

    Each document is reduced to drafts as soon as it is validated, and each file's YAML tree
    released once its documents are: 100,000 credentials of models and trees took 100 MB more.
    """

    def __init__(self, cli_sinks: dict[str, SinkDefinition], file_cap: int, run_cap: int) -> None:
        self.files: dict[str, YamlFile] = {}
        self.problems: list[str] = []
        self.sinks: dict[str, SinkDefinition] = dict(cli_sinks)
        self.sink_origins: dict[str, Origin] = {}
        self.invalid_sinks: set[str] = set()  # defined, with problems already reported
        self.documents: list[tuple[str | None, Origin, list[_Draft]]] = []  # owner, where, drafts
        self.invalid: list[tuple[dict[Any, Any], Origin]] = []  # documents with field errors
        self.bytes_read = 0
        self.file_cap = file_cap  # the most bytes read of one file
        self.run_cap = run_cap  # ... and of all files together
        # Equal values met again (tuples of role and sink names, the origins of a document's
        # defaults), kept once: most credentials of a run share them.
        self._shared: dict[Any, Any] = {}

    def add_file(self, path: Path) -> None:
        name = str(path)
        left = self.run_cap - self.bytes_read
        try:
            yaml_file = read_yaml(path, min(self.file_cap, left))
        except OSError as exc:
            self.problems.append(f"{name}: cannot read: {exc.strerror or exc}")
            return
        except TooLarge:
            if left >= self.file_cap:
                reason = f"file larger than {size_text(self.file_cap)}"
                setting = "PROVISIONER_MAX_MANIFEST_FILE_BYTES"
            else:
                reason = f"the manifests together are larger than {size_text(self.run_cap)}"
                setting = "PROVISIONER_MAX_MANIFEST_RUN_BYTES"
            self.problems.append(f"{name}: {reason} ({setting}; see docs/limits.md)")
            self.bytes_read = self.run_cap  # the budget is spent: later files say so too
            return
        except YamlProblem as exc:
            self.problems.append(
                f"{name}:{exc.line}: {exc.message}" if exc.line else f"{name}: {exc.message}"
            )
            return
        self.files[name] = yaml_file
        self.bytes_read += yaml_file.size
        for index, raw in enumerate(yaml_file.documents):
            if raw is not None:
                self._add_document(raw, Origin(name, index, ()))
        yaml_file.release()

    def _add_document(self, raw: Any, origin: Origin) -> None:
        if not isinstance(raw, dict):
            self._problem(origin, "a manifest document must be a mapping")
            return
        try:
            document = ManifestDocument.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                self._problem(origin.child(*error["loc"]), _message(error))
            self._add_sinks_of_invalid_document(raw, origin)
            self.invalid.append((raw, origin))
            return
        self.documents.append((document.owner, origin, list(self._drafts(document, origin))))
        for sink_name, spec in document.sinks.items():
            self._add_sink(sink_name, spec, origin.child("sinks", sink_name))

    def _add_sinks_of_invalid_document(self, raw: dict[Any, Any], origin: Origin) -> None:
        """Check the sinks of a document that failed, so their problems are reported too."""
        try:
            sinks = SINK_MAP.validate_python(raw.get("sinks") or {})
        except ValidationError:
            return  # already reported with the document
        for sink_name, spec in sinks.items():
            self._add_sink(sink_name, spec, origin.child("sinks", sink_name))

    def _add_sink(self, name: str, spec: SinkSpec, origin: Origin) -> None:
        try:
            kind = sink_type(spec.type)
        except KeyError as exc:
            self._problem(origin.child("type"), str(exc.args[0]))
            self.invalid_sinks.add(name)
            return
        try:
            options = kind.options_model.model_validate(spec.model_extra or {})
        except ValidationError as exc:
            fields = (*kind.options_model.model_fields, "type")
            for error in exc.errors(include_url=False):
                self._problem(origin.child(*error["loc"]), _message(error, fields))
            self.invalid_sinks.add(name)
            return
        definition = SinkDefinition(name=name, type=spec.type, options=options)
        known = self.sinks.get(name)
        if known is not None and known != definition:
            first = self.sink_origins.get(name)
            where = f" (first at {_where(self.files, first)})" if first else " (by --sink)"
            self._problem(origin, f"sink {name!r} defined again with other options{where}")
            return
        self.sinks[name] = definition
        self.sink_origins.setdefault(name, origin)

    def finish(self) -> Manifests:
        owner = self._owner()
        credentials: list[DesiredCredential] = []
        seen: dict[str, Origin] = {}
        for _, _, drafts in self.documents:
            for draft in drafts:
                credential = self._credential(draft, owner)
                if credential is None:
                    continue
                first = seen.setdefault(credential.key, credential.origin)
                if first is not credential.origin:
                    self._problem(
                        credential.origin.child("name"),
                        f"duplicate credential {credential.key!r} "
                        f"(first at {_where(self.files, first)})",
                    )
                credentials.append(credential)
            drafts.clear()  # each document's drafts go as its credentials come
        self._check_kafka_usernames(credentials)
        for raw, origin in self.invalid:
            self._check_sink_references(raw, origin)
        stored = StoredNames(self.sinks, lambda origin: _where(self.files, origin))
        self.problems.extend(stored.problems(credentials))
        if self.problems:
            # A default inherited by many credentials is wrong once, not once per credential.
            raise ManifestError(list(dict.fromkeys(self.problems)))
        return Manifests(tuple(credentials), self.sinks, self.files, owner)

    def _check_kafka_usernames(self, credentials: Sequence[DesiredCredential]) -> None:
        """Two project keys asking for one Kafka username: the API keeps usernames unique."""
        first: dict[str, DesiredCredential] = {}
        for credential in credentials:
            username = credential.kafka.username if credential.kafka else None
            if username is None:
                continue
            other = first.setdefault(username, credential)
            if other is not credential:
                at = other.origin.child("kafka", "username")
                self._problem(
                    credential.origin.child("kafka", "username"),
                    f"{credential.key!r} and {other.key!r} (at {_where(self.files, at)}) both "
                    f"ask for Kafka username {username!r}: give each its own",
                )

    def _owner(self) -> str:
        """The run's owner: every document that names one must name the same one."""
        first: tuple[str, Origin] | None = None
        for named, origin, _ in self.documents:
            if named is None:
                continue
            if first is None:
                first = (named, origin.child("owner"))
            elif named != first[0]:
                self._problem(
                    origin.child("owner"),
                    f"owner {named!r} differs from {first[0]!r} "
                    f"(at {_where(self.files, first[1])}): one run manages one owner's credentials",
                )
        return first[0] if first else DEFAULT_OWNER

    def _check_sink_references(self, raw: dict[Any, Any], origin: Origin) -> None:
        """The sink names of a document that has field errors, read as far as they can be: its
        unknown sinks are reported in the same pass as its other problems."""
        defaults = raw.get("defaults")
        default = defaults.get("sinks") if isinstance(defaults, dict) else None
        for at, spec in _raw_credentials(raw, origin):
            own = spec.get("sinks")
            if own is not None:
                self._check_sinks(own, at.child("sinks"))
            else:
                self._check_sinks(default, origin.child("defaults", "sinks"))

    def _check_sinks(self, names: object, at: Origin) -> None:
        """Each sink named (if `names` is a list or tuple) must be defined, here or by --sink; one
        defined with problems is not unknown (its problems say what is wrong)."""
        for name in names if isinstance(names, list | tuple) else ():
            if isinstance(name, str) and name not in self.sinks and name not in self.invalid_sinks:
                self._problem(at, f"unknown sink {name!r}{did_you_mean(name, self.sinks)}")

    def _drafts(self, document: ManifestDocument, origin: Origin) -> Iterable[_Draft]:
        defaults = document.defaults
        inherited = _Inherited(
            sinks_at=origin.child("defaults", "sinks"),
            roles_at=origin.child("defaults", "roles"),
            access_at=origin.child("defaults"),
        )
        for s_index, service in enumerate(document.services):
            for c_index, spec in enumerate(service.credentials):
                at = self._child(origin, "services", s_index, "credentials", c_index)
                yield self._draft(service, spec, defaults, at, inherited)

    def _draft(
        self,
        service: ServiceSpec,
        spec: CredentialSpec,
        defaults: DefaultsSpec,
        at: Origin,
        inherited: _Inherited,
    ) -> _Draft:
        own_sinks = spec.sinks is not None
        sinks = spec.sinks if own_sinks else defaults.sinks
        kind = CredentialKind(_own_or(spec.kind, defaults.kind) or CredentialKind.CLIENT_CREDENTIAL)
        roles, roles_at, permissions, problems = self._access(spec, defaults, at, inherited, kind)
        problems += _kind_problems(service, spec, kind, at, has_api=bool(roles or permissions))
        rotate = _own_or(spec.rotate_after, defaults.rotate_after)
        grace = _own_or(spec.grace, defaults.grace)
        grace_max = _own_or(spec.grace_max, defaults.grace_max)
        if grace and grace_max and parse_duration(grace_max) < parse_duration(grace):
            where = (
                at.child("grace_max")
                if spec.grace_max is not None
                else at.child("grace")
                if spec.grace is not None
                else inherited.access_at.child("grace_max")
            )
            problems.append(
                (
                    where,
                    f"grace_max {grace_max} is shorter than grace {grace}: the old credential "
                    "stays live for grace at least; make grace_max as long as grace or longer",
                )
            )
        if grace_max and not (grace and parse_duration(grace)):
            where = (
                at.child("grace_max")
                if spec.grace_max is not None
                else inherited.access_at.child("grace_max")
            )
            problems.append(
                (
                    where,
                    "grace_max keeps a replaced credential past its grace while it is still "
                    "used, but without a grace it goes as soon as the new one is delivered: "
                    "give `grace` too",
                )
            )
        project_key = kind is CredentialKind.PROJECT_KEY
        return _Draft(
            service=service.name,
            name=spec.name,
            description=spec.description,
            service_id=service.service_id,
            roles=self._share(tuple(dict.fromkeys(roles or ()))),
            permission_ids=self._share(tuple(dict.fromkeys(permissions or ()))),
            sinks=None if sinks is None else self._share(tuple(sinks)),
            sinks_at=at.child("sinks") if own_sinks else inherited.sinks_at,
            rotate_after=parse_duration(rotate) if rotate else None,
            grace=parse_duration(grace) if grace else _NO_GRACE,
            grace_max=parse_duration(grace_max) if grace_max else None,
            origin=at,
            roles_origin=roles_at,
            problems=self._share(tuple(problems)),
            kind=kind,
            kafka=spec.kafka.access() if project_key and spec.kafka else None,
            mcp=spec.mcp.scope() if project_key and spec.mcp else None,
        )

    def _credential(self, draft: _Draft, owner: str) -> DesiredCredential | None:
        """The credential a draft becomes once every sink is known; None (and a problem) if it
        names none."""
        sinks = draft.sinks
        if sinks is None:
            sinks = (DEFAULT_SINK,) if DEFAULT_SINK in self.sinks else ()
        if not sinks:
            self._problem(
                draft.origin, "no sink: name one in `sinks`, in `defaults.sinks`, or give --sink"
            )
            return None
        self._check_sinks(sinks, draft.sinks_at)
        for at, problem in draft.problems:
            self._problem(at, problem)
        return DesiredCredential(
            service=draft.service,
            name=draft.name,
            description=draft.description,
            service_id=draft.service_id,
            roles=draft.roles,
            permission_ids=draft.permission_ids,
            sinks=self._share(tuple(dict.fromkeys(sinks))),
            rotate_after=draft.rotate_after,
            grace=draft.grace,
            origin=draft.origin,
            roles_origin=draft.roles_origin,
            owner=owner,
            kind=draft.kind,
            kafka=draft.kafka,
            mcp=draft.mcp,
            grace_max=draft.grace_max,
        )

    def _access(
        self,
        spec: CredentialSpec,
        defaults: DefaultsSpec,
        at: Origin,
        inherited: _Inherited,
        kind: CredentialKind,
    ) -> tuple[list[str] | None, Origin, list[str] | None, list[tuple[Origin, str]]]:
        """Roles or permissions (the API takes one of them), the credential's own over defaults,
        and the problems with them.

        A credential that names either kind of access inherits neither from `defaults`. A
        project key may have neither when it has another capability (`kafka:`).
        """
        if spec.roles is not None or spec.permissions:
            roles, roles_at, permissions = spec.roles, self._child(at, "roles"), spec.permissions
            where = at
        else:
            roles, roles_at = defaults.roles, inherited.roles_at
            permissions, where = defaults.permissions, inherited.access_at
        problems: list[tuple[Origin, str]] = []
        if roles and permissions:
            problems.append(
                (
                    where.child("permissions"),
                    "give roles or permissions, not both: the API refuses a credential with both",
                )
            )
        elif roles or permissions:
            pass
        elif kind is CredentialKind.CLIENT_CREDENTIAL:
            problems.append(
                (
                    at,
                    "no access: give `roles` (or `permissions`), here or in `defaults`; "
                    "a credential without either can do nothing",
                )
            )
        elif spec.kafka is None and spec.mcp is None:  # with `mcp:` alone, that problem says
            problems.append(
                (
                    at,
                    "no capability: a project key needs API access (`roles` or `permissions`, "
                    "here or in `defaults`) or Kafka access (`kafka:`)",
                )
            )
        return roles, roles_at, permissions, problems

    def _child(self, origin: Origin, *parts: str | int) -> Origin:
        """`origin.child(*parts)`, its path shared with the equal paths of other files."""
        return Origin(origin.file, origin.doc, self._share(origin.path + parts))

    def _share(self, value: T) -> T:
        """The equal value kept already, else `value`, kept now."""
        return self._shared.setdefault(value, value)  # type: ignore[no-any-return]

    def _problem(self, origin: Origin, message: str) -> None:
        self.problems.append(f"{_where(self.files, origin)}: {message}")


@dataclass(frozen=True, slots=True)
class _Inherited:
    """Where a document's defaults were written: one origin each, shared by its credentials."""

    sinks_at: Origin
    roles_at: Origin
    access_at: Origin


def _raw_credentials(
    raw: dict[Any, Any], origin: Origin
) -> Iterable[tuple[Origin, dict[Any, Any]]]:
    """Every credential mapping of an unvalidated document, with where it is."""
    services = raw.get("services")
    for s_index, service in enumerate(services if isinstance(services, list) else ()):
        specs = service.get("credentials") if isinstance(service, dict) else None
        for c_index, spec in enumerate(specs if isinstance(specs, list) else ()):
            if isinstance(spec, dict):
                yield origin.child("services", s_index, "credentials", c_index), spec


def _kind_problems(
    service: ServiceSpec, spec: CredentialSpec, kind: CredentialKind, at: Origin, *, has_api: bool
) -> list[tuple[Origin, str]]:
    """What a credential's kind rules out: `kafka:`/`mcp:` on a client credential; on a project
    key, `mcp:` without API access, and a key longer than the API takes as a name."""
    problems: list[tuple[Origin, str]] = []
    if kind is CredentialKind.CLIENT_CREDENTIAL:
        for part, what in (("kafka", "Kafka access"), ("mcp", "MCP scoping")):
            if getattr(spec, part) is not None:
                problems.append(
                    (
                        at.child(part),
                        f"{what} is for project keys: add `kind: project-key` (a client "
                        "credential has API access only)",
                    )
                )
        return problems
    if spec.mcp is not None and not has_api:
        problems.append(
            (
                at.child("mcp"),
                "MCP scoping needs API access: MCP is reached with the key's API credential; "
                "give `roles` or `permissions`",
            )
        )
    if spec.description is not None and (markup := sorted(set(spec.description) & set("<>&"))):
        problems.append(
            (
                at.child("description"),
                f"a project key's description may not hold {' '.join(markup)}: the API "
                "sanitises it as HTML, so what it keeps would differ from the manifest on every "
                "run",
            )
        )
    key = f"{service.name}/{spec.name}"
    if len(key) > MAX_PROJECT_KEY_NAME:
        problems.append(
            (
                at.child("name"),
                f"a project key's name on the API is its key {key!r}, {len(key)} characters, "
                f"but the API takes at most {MAX_PROJECT_KEY_NAME}: shorten the service or "
                "credential name",
            )
        )
    return problems


def _own_or(own: T | None, default: T | None) -> T | None:
    """A credential's own value, else the document default."""
    return own if own is not None else default


def _where(files: dict[str, YamlFile], origin: Origin) -> str:
    yaml_file = files.get(origin.file)
    line = yaml_file.line_of(origin.doc, origin.path) if yaml_file else 0
    location = f"{origin.file}:{line}" if line else origin.file
    document = yaml_file.documents[origin.doc] if yaml_file else None
    return f"{location}: {_named_path(document, origin.path) or '(document)'}"


_NAME = re.compile(NAME_PATTERN)


def _named_path(document: Any, path: Sequence[str | int]) -> str:
    """`services[payments-api].credentials[ingest].roles`: list items by their name when it is
    valid, so a path can be read without counting entries; by position otherwise."""
    out, node = "", document
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            out += f"[{name}]" if isinstance(name, str) and _NAME.match(name) else f"[{part}]"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


_EXPECTED = {
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "bool_type": "true or false",
}


def _yaml_type(value: Any) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    if value is None:
        return "nothing (null)"
    return names.get(type(value), f"a {type(value).__name__}")


def _message(error: Any, fields: Iterable[str] = FIELD_NAMES) -> str:
    """Pydantic's error in the words of this format; `fields` are the names a typo may mean."""
    kind, loc, value = error.get("type"), error["loc"], error.get("input")
    last = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        return "unknown field" + did_you_mean(str(last), fields)
    if kind == "literal_error" and loc == ("version",):
        return f"unsupported version {value!r} (expected 1)"
    if kind == "literal_error" and last in {"kind", "profile"}:
        allowed = error["ctx"]["expected"].replace("'", "")
        return f"unknown {last} {json.dumps(value)}: expected {allowed}"
    if kind == "too_short" and last == "operations":
        return "must name at least one operation"
    if kind == "too_short":
        return "must not be empty (leave the field out instead)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_type" and last in _DURATIONS:
        return (
            f"got {_yaml_type(value)} ({json.dumps(value)}): write a duration such as 90d "
            "(a number and a unit: s, m, h, d, w)"
        )
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_yaml_type(value)}"
    if kind == "string_pattern_mismatch" and last in _DURATIONS:
        return f"invalid duration {json.dumps(value)}: expected a number and a unit (s, m, h, d, w)"
    if kind == "value_error" and last in _DURATIONS:
        return str(error["ctx"]["error"])
    if kind in {"string_pattern_mismatch", "string_too_long"} and last == "username":
        return (
            f"invalid Kafka username {json.dumps(value)}: use lowercase letters, digits and "
            "'-', starting and ending with a letter or digit, at most "
            f"{MAX_USERNAME} characters (the provisioner appends a 5-character suffix)"
        )
    if kind == "string_pattern_mismatch":
        return (
            f"invalid name {json.dumps(value)}: use lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return str(error["msg"])
