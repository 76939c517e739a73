"""Configuration, read once at the edge: flags over environment over defaults."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BeforeValidator, ByteSize, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRETS_DIR = Path("/run/secrets")
#: The manifest limits' defaults (`manifest.yamlfile.MAX_FILE_BYTES`, `manifest.load.
#: MAX_TOTAL_BYTES`; a test holds them equal): one file, and all files of a run together.
MAX_MANIFEST_FILE_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_RUN_BYTES = 32 * 1024 * 1024


def _vault_token_file() -> Path | None:
    """`~/.vault-token` (where `vault login` keeps its token) when it exists."""
    try:
        path = Path.home() / ".vault-token"
    except RuntimeError:  # no home directory to speak of
        return None
    return path if path.is_file() else None


#: What Go's strconv.ParseBool reads, as the Vault CLI reads VAULT_SKIP_VERIFY.
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def vault_bool(value: object) -> bool:
    """A boolean as the Vault CLI reads one (`1`, `t`, `true`, `0`, `f`, `false`...; empty: false).

    Anything else is an error, as it is for `vault`: a typo must not quietly keep (or drop)
    TLS verification.
    """
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip()
    if text in _GO_TRUE:
        return True
    if not text or text in _GO_FALSE:
        return False
    raise ValueError(f"expected a boolean (1, t, true, 0, f, false), got {text!r}")


#: `--max-changes`: `all`, a number of changes, or a percentage of the owner's credentials.
MAX_CHANGES_PATTERN = r"^(?:all|\d{1,9}%?)$"


def _max_changes(value: str) -> str:
    value = value.strip().lower()
    if not re.match(MAX_CHANGES_PATTERN, value):
        raise ValueError(f"expected N, P% or all, got {value!r}")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s):// URL, got {value!r}")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Everything the provisioner reads from its environment (see the README's table)."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
    )

    host: Annotated[str, AfterValidator(_http_url)] = Field(
        "https://api.streamkap.com",
        validation_alias=AliasChoices("STREAMKAP_HOST", "STREAMKAP_API_URL"),
    )
    client_id: str | None = Field(None, validation_alias="STREAMKAP_CLIENT_ID")
    secret: SecretStr | None = Field(None, validation_alias="STREAMKAP_SECRET")
    access_token: SecretStr | None = Field(None, validation_alias="STREAMKAP_ACCESS_TOKEN")
    concurrency: int = Field(16, ge=1, le=1024, validation_alias="PROVISIONER_CONCURRENCY")
    max_attempts: int = Field(6, ge=1, le=100, validation_alias="PROVISIONER_MAX_ATTEMPTS")
    timeout: float = Field(30.0, gt=0, le=3600, validation_alias="PROVISIONER_TIMEOUT")
    # How long a new project key may stay `creating` before it is given up (and deleted).
    activation_timeout: float = Field(
        300.0, gt=0, le=86400, validation_alias="PROVISIONER_ACTIVATION_TIMEOUT"
    )
    max_changes: Annotated[str, AfterValidator(_max_changes)] = Field(
        "25%", validation_alias="PROVISIONER_MAX_CHANGES"
    )
    lock_timeout: float = Field(600.0, ge=0, validation_alias="PROVISIONER_LOCK_TIMEOUT")
    log_format: Literal["json", "console", "auto"] = Field(
        "auto", validation_alias="PROVISIONER_LOG_FORMAT"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias="PROVISIONER_LOG_LEVEL"
    )
    # Also read by `validate`, without pydantic-settings (`cli.arguments.LocalSettings`).
    max_manifest_file_bytes: ByteSize = Field(
        ByteSize(MAX_MANIFEST_FILE_BYTES),
        gt=0,
        validation_alias="PROVISIONER_MAX_MANIFEST_FILE_BYTES",
    )
    max_manifest_run_bytes: ByteSize = Field(
        ByteSize(MAX_MANIFEST_RUN_BYTES),
        gt=0,
        validation_alias="PROVISIONER_MAX_MANIFEST_RUN_BYTES",
    )
    vault_addr: str | None = Field(None, validation_alias="VAULT_ADDR")
    vault_token: SecretStr | None = Field(None, validation_alias="VAULT_TOKEN")
    vault_namespace: str | None = Field(None, validation_alias="VAULT_NAMESPACE")
    vault_cacert: str | None = Field(None, validation_alias="VAULT_CACERT")
    vault_token_file: Path | None = Field(
        default_factory=_vault_token_file, validation_alias="VAULT_TOKEN_FILE"
    )
    vault_capath: str | None = Field(None, validation_alias="VAULT_CAPATH")
    vault_client_cert: str | None = Field(None, validation_alias="VAULT_CLIENT_CERT")
    vault_client_key: str | None = Field(None, validation_alias="VAULT_CLIENT_KEY")
    vault_skip_verify: Annotated[bool, BeforeValidator(vault_bool)] = Field(
        False, validation_alias="VAULT_SKIP_VERIFY"
    )
