"""Broken manifests: each is refused with `file:line: field: message`, exit 2, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.cli import main
from provisioner.errors import ManifestError
from provisioner.manifest import load_manifests
from provisioner.manifest import yamlfile as yamlload
from tests.support.served import run_cli, served

HEAD = "version: 1\nsinks:\n  s: {type: file, path: ./out}\nservices:\n"


def one(name: str = "api", cred: str = "c", extra: str = "") -> str:
    return f"  - name: {name}\n    credentials:\n      - name: {cred}\n        sinks: [s]\n{extra}"


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)

CORPUS: dict[str, tuple[bytes, str]] = {
    "yaml-syntax": (b"version: 1\nservices: [\n  {name: a\n", ":4: invalid YAML"),
    "tab-indent": (b"version: 1\nservices:\n\t- name: a\n", ":3: invalid YAML"),
    "unknown-key": (
        (HEAD + one(extra="        colour: blue\n")).encode(),
        ":9: services[api].credentials[c].colour: unknown field",
    ),
    "unknown-top-key": (b"version: 1\nservice: []\n", ":2: service: unknown field"),
    "invalid-name": (
        (HEAD + one(name="Payments API")).encode(),
        ":5: services[0].name: invalid name",
    ),
    "path-traversal-service": (
        (HEAD + one(name="../../etc")).encode(),
        ":5: services[0].name: invalid name",
    ),
    "path-traversal-credential": (
        (HEAD + one(cred="a/../../b")).encode(),
        ":7: services[api].credentials[0].name: invalid name",
    ),
    "dot-dot-name": ((HEAD + one(cred="..")).encode(), ":7: services[api].credentials[0].name"),
    "duplicate-in-service": (
        (HEAD + one() + "      - name: c\n        sinks: [s]\n").encode(),
        ":9: services[api].credentials[c].name: duplicate credential 'api/c'",
    ),
    "unknown-sink": (
        (HEAD + one().replace("[s]", "[vault]")).encode(),
        ":8: services[api].credentials[c].sinks: unknown sink 'vault'",
    ),
    "unknown-sink-type": (
        b"version: 1\nsinks:\n  s: {type: s3, bucket: x}\n",
        ":3: sinks.s.type: unknown sink type 's3'",
    ),
    "sink-option-typo": (
        b"version: 1\nsinks:\n  s: {type: file, pth: ./x}\n",
        ":3: sinks.s.pth: unknown field",
    ),
    "bad-duration": (
        (HEAD + one(extra="        rotate_after: 90 days\n")).encode(),
        ":9: services[api].credentials[c].rotate_after: invalid duration",
    ),
    "negative-duration": (
        (HEAD + one(extra="        grace: -1h\n")).encode(),
        ":9: services[api].credentials[c].grace: invalid duration",
    ),
    "empty-roles": (
        (HEAD + one(extra="        roles: []\n")).encode(),
        ":9: services[api].credentials[c].roles: must not be empty",
    ),
    "roles-not-a-list": (
        (HEAD + one(extra="        roles: admin\n")).encode(),
        ":9: services[api].credentials[c].roles: expected a list, got a string",
    ),
    "no-credentials": (
        b"version: 1\nservices:\n  - name: api\n    credentials: []\n",
        ":4: services[api].credentials: must not be empty",
    ),
    "missing-version": (b"services: []\n", ":1: version: required field is missing"),
    "wrong-version": (b"version: 2\n", ":1: version: unsupported version 2"),
    "string-version": (b"version: '1'\n", ":1: version: unsupported version '1'"),
    "list-root": (b"- version: 1\n", ":1: (document): a manifest document must be a mapping"),
    "scalar-root": (b"just text\n", ":1: (document): a manifest document must be a mapping"),
    "second-document-bad": (
        b"version: 1\n---\nversion: 1\nbogus: true\n",
        ":4: bogus: unknown field",
    ),
    "duplicate-yaml-key": (b"version: 1\nversion: 1\n", ":2: duplicate key 'version'"),
    "non-scalar-key": (b"version: 1\n? [a, b]\n: c\n", ":2: mapping keys must be scalars"),
    "non-utf8": (b"version: 1\n# \xff\xfe\n", ":2: not valid UTF-8"),
    "control-chars": (b"version: 1\x00\n", ":1: invalid YAML: control characters"),
    "python-tag": (b"version: !!python/object/apply:os.system [ls]\n", ":1: invalid YAML"),
    "custom-tag": (b"version: !vault 1\n", ":1: invalid YAML"),
    "billion-laughs": (BILLION_LAUGHS.encode(), ":2: YAML aliases (*name) are not allowed"),
    "deep-nesting": (b"version: 1\nx: " + b"[" * 5000 + b"]" * 5000 + b"\n", ":2: invalid YAML"),
    "huge-description": (
        (HEAD + one(extra=f"        description: {'x' * 400_000}\n")).encode(),
        ":9: services[api].credentials[c].description: String should have at most 1024",
    ),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_broken_manifest_exits_2_naming_file_line_and_field(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, expected = CORPUS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}{expected}" in err, err
    assert "Traceback" not in err


def test_keys_must_be_unique_across_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text(HEAD + one())
    (tmp_path / "b.yaml").write_text(HEAD + one())
    assert main(["validate", str(tmp_path)]) == 2
    assert (
        f"{tmp_path / 'b.yaml'}:7: services[api].credentials[c].name: duplicate credential 'api/c'"
        in (capsys.readouterr().err)
    )


def test_oversized_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(yamlload, "MAX_FILE_BYTES", 1024)
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + one(extra=f"        description: {'x' * 2000}\n"))
    with pytest.raises(ManifestError, match="file larger than"):
        load_manifests([path])


def test_a_missing_path_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read: No such file or directory" in capsys.readouterr().err


def test_broken_manifests_make_no_call_at_all(tmp_path: Path) -> None:
    """The whole corpus at once through `apply` in a subprocess: exit 2 and an empty call log."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for case, (content, _) in CORPUS.items():
        (manifests / f"{case}.yaml").write_bytes(content)
    with served() as sim:
        env = sim.env(PROVISIONER_LOG_FORMAT="console")  # a line per problem
        result = run_cli("apply", manifests, cwd=tmp_path, env=env)
        calls = sim.state.calls()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert sum(1 for line in result.stderr.splitlines() if str(manifests) in line) >= len(CORPUS)
    assert calls == []


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.binary(max_size=300)
    | st.text(
        alphabet=st.sampled_from(list("version: 1\n-[]{}&*!|>'\"#%@`,?~ abcsinkeryfl\t")),
        max_size=300,
    )
)
def test_the_loader_raises_nothing_but_manifest_errors(
    tmp_path: Path, content: bytes | str
) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    try:
        load_manifests([path])
    except ManifestError as exc:
        problems = exc.problems
    else:
        problems = ()
    assert all(problem.startswith(str(path)) for problem in problems)
