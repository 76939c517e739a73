"""`validate` reads its settings without pydantic-settings: the same names, defaults and checks as
`Settings`, which the commands that call out read; both carry the manifest limits to the loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.cli.arguments import LocalSettings, read_settings
from provisioner.config import MAX_MANIFEST_FILE_BYTES, MAX_MANIFEST_RUN_BYTES, Settings
from provisioner.errors import ManifestError, UsageError
from provisioner.manifest import load as manifest_load
from provisioner.manifest import yamlfile
from provisioner.reconcile import pipeline
from provisioner.reconcile.session import Job
from tests.support.manifests import one_credential


@pytest.mark.parametrize("name", sorted(LocalSettings.model_fields))
def test_validate_reads_each_setting_as_the_other_commands_do(name: str) -> None:
    local, full = LocalSettings.model_fields[name], Settings.model_fields[name]
    assert local.validation_alias == full.validation_alias
    assert local.default == full.default
    assert local.annotation == full.annotation
    assert local.metadata == full.metadata


def test_the_limits_defaults_are_the_loaders() -> None:
    assert MAX_MANIFEST_FILE_BYTES == yamlfile.MAX_FILE_BYTES
    assert MAX_MANIFEST_RUN_BYTES == manifest_load.MAX_TOTAL_BYTES


def test_names_are_read_whatever_their_case_and_sizes_with_their_unit() -> None:
    environ = {"provisioner_max_manifest_file_bytes": "8MiB", "PROVISIONER_LOG_LEVEL": "warning"}
    settings = LocalSettings.read(environ)
    assert settings.max_manifest_file_bytes == 8 * 1024 * 1024
    assert settings.log_level == "warning"
    assert settings.max_manifest_run_bytes == manifest_load.MAX_TOTAL_BYTES


@pytest.mark.parametrize(
    "environ",
    [
        {"PROVISIONER_MAX_MANIFEST_RUN_BYTES": "0"},
        {"PROVISIONER_MAX_MANIFEST_FILE_BYTES": "lots"},
        {"PROVISIONER_LOG_FORMAT": "xml"},
    ],
)
def test_a_value_that_is_not_valid_is_a_usage_error(environ: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=f"invalid configuration: {next(iter(environ))}"):
        LocalSettings.read(environ)


def test_plan_and_apply_load_manifests_within_the_settings_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(one_credential(f"description: {'x' * 1000}"))
    monkeypatch.setenv("PROVISIONER_MAX_MANIFEST_FILE_BYTES", "1KiB")
    job = Job(paths=(path,), settings=read_settings())
    with pytest.raises(ManifestError, match=r"m\.yaml: file larger than 1 KiB"):
        pipeline.load(job)
    monkeypatch.setenv("PROVISIONER_MAX_MANIFEST_FILE_BYTES", "2KiB")
    assert len(pipeline.load(Job(paths=(path,), settings=read_settings())).credentials) == 1
