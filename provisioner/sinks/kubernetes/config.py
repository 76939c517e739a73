"""The `kubernetes` sink's configuration: its options, its `--sink` URI, and how it connects.

The connection is found as kubectl finds it: the pod's service account when running in a pod
(`KUBERNETES_SERVICE_HOST`/`_PORT`, the mounted token, CA and namespace), else the current
context of `KUBECONFIG` (the first file of the list that exists) or `~/.kube/config`. The
kubeconfig is read by lightkube (token, token file, client certificate, exec credentials,
basic auth); the requests go through the process's own HTTP stack (`provisioner.http`).

lightkube is the `kubernetes` extra: it is imported only here, only when a sink is opened or
its options are checked, so the base install works without it.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import field_validator, model_validator

from provisioner.errors import UsageError
from provisioner.http.transport import open_transport
from provisioner.sinks.base import SinkContext
from provisioner.sinks.fields import MappedSinkOptions

INSTALL = "pip install 'streamkap-provisioner[kubernetes]'"
URI_FORM = "k8s:NAMESPACE"
DEFAULT_NAME = "streamkap-{service}-{credential}"
#: Where the kubelet mounts a pod's service account (kubectl's in-cluster config reads it here).
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MAX_NAME = 253  # a Secret's name is a DNS-1123 subdomain
_LONGEST_PART = 63  # services and credentials match ^[a-z0-9][a-z0-9._-]{0,62}$
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LITERAL = re.compile(r"[A-Za-z0-9._-]*")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")  # what a Secret's `data` accepts as a key


def client_missing() -> str | None:
    """Why the client library cannot be used (with the install line), or None when it can."""
    try:
        import lightkube.config.client_adapter
        import lightkube.config.kubeconfig  # noqa: F401
    except ImportError:
        return f"the kubernetes sink needs the `kubernetes` extra: {INSTALL}"
    return None


def render_name(template: str, service: str, credential: str) -> str:
    """The Secret name for a key: the template filled in, lower case, `_` made `-`."""
    return template.format(service=service, credential=credential).lower().replace("_", "-")


def valid_name(name: str) -> bool:
    """Whether `name` is a DNS-1123 subdomain, as a Secret's name must be."""
    return len(name) <= MAX_NAME and _SUBDOMAIN.fullmatch(name) is not None


def check_template(value: str) -> str:
    """A name template over `{service}` and `{credential}`, valid for every manifest name."""
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"not a name template: {exc}") from None
    fields = set()
    for literal, field, spec, conversion in parts:
        if not _LITERAL.fullmatch(literal):
            raise ValueError(
                f"{literal!r}: a Secret name may hold only letters, digits, '-', '.' and '_'"
            )
        if field is None:
            continue
        if field not in ("service", "credential") or spec or conversion:
            raise ValueError(
                f"{{{field}}}: the template may use only {{service}} and {{credential}}"
            )
        fields.add(field)
    if fields != {"service", "credential"}:
        raise ValueError("the template must use both {service} and {credential} (one Secret each)")
    longest = render_name(value, "a" * _LONGEST_PART, "a" * _LONGEST_PART)
    if len(longest) > MAX_NAME:
        raise ValueError(
            f"names made from it may be {len(longest)} characters long (63-character service "
            f"and credential names); a Secret's name has at most {MAX_NAME}"
        )
    if not valid_name(render_name(value, "a", "b")):
        raise ValueError(
            f"{render_name(value, 'a', 'b')!r} is not a DNS-1123 name (lower case letters, "
            "digits, '-' and '.', starting and ending with a letter or digit)"
        )
    return value


class KubernetesSinkOptions(MappedSinkOptions):
    """Options of the `kubernetes` sink: the namespace, the Secret name template, `fields`."""

    namespace: str
    name: str = DEFAULT_NAME

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _LABEL.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a namespace name (a DNS-1123 label: at most 63 lower case "
                "letters, digits and '-', starting and ending with a letter or digit)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_template(value)

    @classmethod
    def key_problem(cls, out_key: str) -> str | None:
        if _DATA_KEY.fullmatch(out_key):
            return None
        return "not a Secret data key (at most 253 letters, digits, '-', '_' and '.')"

    def record_names(self, service: str, credential: str) -> tuple[str, ...]:
        """The Secret's name: two keys that make the same one would take turns owning it."""
        name = render_name(self.name, service, credential)
        if not valid_name(name):
            raise ValueError(
                f"the `name` template makes {name!r}, not a valid Secret name (a DNS-1123 "
                "subdomain: lower case letters, digits, '-' and '.', starting and ending with a "
                "letter or digit); rename the credential or change the template"
            )
        return (name,)

    @model_validator(mode="after")
    def _installed(self) -> KubernetesSinkOptions:
        missing = client_missing()
        if missing is not None:
            raise ValueError(missing)
        return self


def options_from_uri(target: str) -> dict[str, Any]:
    """`k8s:NAMESPACE`: Secrets named by the default template in that namespace."""
    if not target or "/" in target:
        raise ValueError(f"expected {URI_FORM}")
    return {"namespace": target}


@dataclass(frozen=True)
class Connection:
    """An HTTP client for one cluster's API, authenticated, and how messages name the cluster."""

    client: httpx.AsyncClient
    where: str  # "in-cluster (https://10.0.0.1:443)" or "context prod of /home/me/.kube/config"


def connect(context: SinkContext) -> Connection:
    """Find the cluster as kubectl does; UsageError when there is none or it cannot be used."""
    missing = client_missing()
    if missing is not None:
        raise UsageError(missing)
    from lightkube.config import client_adapter
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.config.models import User
    from lightkube.core.exceptions import ConfigError

    # KUBECONFIG and the in-cluster variables are read here, as kubectl reads them; settings a
    # sink is given (`context.environ`) win.
    environ: Mapping[str, str] = {**os.environ, **context.environ}
    try:
        if _in_cluster(environ):
            config, where = _service_account(environ, KubeConfig), "in-cluster"
        else:
            path = _kubeconfig_path(environ)
            found = KubeConfig.from_file(path).get()
            if found is None:
                raise UsageError(f"{path}: no current context (kubectl config use-context NAME)")
            config, where = found, f"context {found.context_name} of {path}"
        user = config.user or User()  # none: e.g. `kubectl proxy` on loopback
        verify = client_adapter.verify_cluster(config.cluster, user, config.abs_file)
        auth = client_adapter.user_auth(user)
    except ConfigError as exc:
        raise UsageError(f"kubernetes sink: {exc}") from None
    except (OSError, ValueError) as exc:  # ssl.SSLError included: a CA or client cert unusable
        raise UsageError(
            f"kubernetes sink: cannot use the cluster's configuration: {exc}"
        ) from None
    server = str(config.cluster.server).rstrip("/")
    client = httpx.AsyncClient(
        base_url=server,
        auth=auth,
        transport=open_transport(connections=context.connections, verify=verify),
        timeout=context.timeout,
        headers={"User-Agent": "streamkap-provisioner", "Accept": "application/json"},
    )
    return Connection(client, f"{where} ({server})")


def _in_cluster(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT / "token").is_file()


def _service_account(environ: Mapping[str, str], kube_config: Any) -> Any:
    """The pod's service account, as `rest.InClusterConfig` reads it."""
    from lightkube.config.models import Cluster, User

    host = environ["KUBERNETES_SERVICE_HOST"]
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    token_file = SERVICE_ACCOUNT / "token"
    namespace_file = SERVICE_ACCOUNT / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else "default"
    config = kube_config.from_one(
        cluster=Cluster(
            server=f"https://{host}:{port}", certificate_auth=str(SERVICE_ACCOUNT / "ca.crt")
        ),
        # The token file is re-read as the kubelet rotates it.
        user=User(token_file=str(token_file)),
        namespace=namespace,
    )
    return config.get()


def _kubeconfig_path(environ: Mapping[str, str]) -> Path:
    listed = [Path(p).expanduser() for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    for path in listed:
        if path.is_file():
            return path
    if listed:
        raise UsageError(f"KUBECONFIG names no file that exists ({environ['KUBECONFIG']})")
    home = environ.get("HOME")
    default = (Path(home) if home else Path.home()) / ".kube" / "config"
    if not default.is_file():
        raise UsageError(
            "no Kubernetes cluster to write Secrets to: not in a pod (KUBERNETES_SERVICE_HOST is "
            f"unset), KUBECONFIG is unset and {default} does not exist"
        )
    return default
