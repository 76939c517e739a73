"""Reading YAML from events: the same documents and errors as PyYAML's safe loader gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioner.manifest.yamlfile import MAX_DEPTH, YamlProblem, read_yaml

SAME_AS_SAFE_LOADER = [
    "a: 1\nb: [1, 2.5, true, null, ~, yes, off, 0x1f, 1_000, .inf, -.Inf]\n",
    "d: 2024-01-02\nt: 2001-12-14t21:59:43.10-05:00\n",
    "s: 'quoted'\nq: \"1\"\nplain: hello world\nblock: |\n  one\n  two\n",
    "---\na: 1\n---\n---\nb: [x, {c: d}]\n...\n",
    "# only a comment\n",
    "empty:\nlist: []\nmap: {}\n1: one\nfalse: f\n",
    "x: !!str 123\ny: !!int '7'\nb: !!binary aGVsbG8=\n",
    "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\n",  # unusual tags: PyYAML's own path
    "anchored: &a {a: 1}\n",
]


def load(tmp_path: Path, text: str) -> list[object]:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return read_yaml(path).documents


@pytest.mark.parametrize("text", SAME_AS_SAFE_LOADER)
def test_documents_are_what_the_safe_loader_builds(tmp_path: Path, text: str) -> None:
    assert load(tmp_path, text) == list(yaml.safe_load_all(text))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: &x 1\nb: *x\n", 2, "YAML aliases (*name) are not allowed in manifests"),
        ("s: !!set {a}\nx: &y 1\nz: *y\n", 3, "YAML aliases (*name) are not allowed in manifests"),
        ("k: 1\nk: 2\n", 2, "duplicate key 'k'"),
        ("? [a, b]\n: 1\n", 1, "mapping keys must be scalars"),
    ],
)
def test_refused_constructs_name_their_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    with pytest.raises(YamlProblem) as caught:
        load(tmp_path, text)
    assert (caught.value.line, caught.value.message) == (line, message)


def test_a_syntax_error_in_a_file_with_a_star_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(YamlProblem) as caught:
        load(tmp_path, "b: [1,\nc: d  # a * in a comment\n")
    assert caught.value.message.startswith("invalid YAML")


@pytest.mark.parametrize("text", ["x: !custom 1\n", "m:\n  <<: {a: 1}\n  b: 2\n"])
def test_unknown_tags_and_merge_keys_are_refused_as_before(tmp_path: Path, text: str) -> None:
    with pytest.raises(YamlProblem, match="could not determine a constructor"):
        load(tmp_path, text)


def nested(levels: int) -> str:
    """`levels` mappings, one inside the other, the innermost holding `v`."""
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(levels - 1)) + f"{'  ' * (levels - 1)}k: v\n"


def test_nesting_up_to_the_bound_is_read(tmp_path: Path) -> None:
    text = nested(MAX_DEPTH)
    assert load(tmp_path, text) == list(yaml.safe_load_all(text))


# The event builder, and PyYAML's own path (taken for the `!!set` on the first line).
@pytest.mark.parametrize("head", ["", "s: !!set {a}\n"])
def test_nesting_past_the_bound_is_refused_at_its_line(tmp_path: Path, head: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        load(tmp_path, head + nested(MAX_DEPTH + 1))
    assert caught.value.line == MAX_DEPTH + 1 + head.count("\n")
    assert caught.value.message == f"YAML nested deeper than {MAX_DEPTH} levels"
