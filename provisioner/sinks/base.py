"""The sink protocol: where new secrets are delivered, and read back from on later runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from provisioner.errors import SinkError
from provisioner.model import DEFAULT_OWNER, SinkRecord

if TYPE_CHECKING:  # validating options needs neither httpx nor the event loop's library
    import httpx

    from provisioner.runtime import Halt


class SinkOptions(BaseModel):
    """Base for a sink type's options (the manifest's `sinks.<name>` mapping minus `type`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def record_names(self, service: str, credential: str) -> tuple[str, ...]:
        """The names this sink stores a credential's record under where two keys could meet
        (env variables, a Secret's name), checked across credentials when manifests are
        validated; ValueError when no valid name can be made. None by default: the sink keeps
        every key apart itself (one path per key)."""
        return ()

    def unstorable(self, record: SinkRecord) -> dict[str, str]:
        """The record's fields this sink could not store exactly, each with why; validation
        asks it of the fields a manifest gives (description, service_id, ...)."""
        return {}


@dataclass(frozen=True)
class SinkContext:
    """What sinks may need from the outside, read once at the edge."""

    cwd: Path
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold tokens
    # Under --simulate: the in-process Vault stub, where the vault sink sends its HTTP.
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = 30.0
    max_attempts: int = 6
    connections: int = 16  # most requests a remote sink has in flight
    # Under --simulate: remote sinks talk to stubs that know none of the manifest's logins (a
    # vault sink uses the stub's root token from `environ`, whatever its `auth` block says).
    simulated: bool = False
    # The run's owner (the manifests' `owner:`): remote sinks record it on every entry they
    # write, and never overwrite an entry another owner recorded.
    owner: str = DEFAULT_OWNER
    # The run's halt: once it is set, remote sinks retry nothing (a stopping run ends promptly).
    halt: Halt | None = None


@dataclass(frozen=True, slots=True)
class Previous:
    """What a sink held for a key just before a write: what its `restore` puts back.

    `client_id` is the credential it held (None: nothing, or nothing it could read as a record).
    `content` is the sink's own snapshot, opaque to everyone else; it may hold a secret, so it is
    kept out of `repr` and must never be logged.
    """

    client_id: str | None = None
    content: object = field(default=None, repr=False, compare=False)


#: The sink held nothing for the key (or, writing to standard output, cannot take a write back).
NOTHING = Previous()


@runtime_checkable
class Sink(Protocol):
    """One place secrets go. `readable` is False for write-only sinks (env on stdout)."""

    name: str
    readable: bool

    async def check(self) -> SinkError | None:
        """Whether this sink can take writes at all, asked once per run before planning.

        None when it can; otherwise the error every write would meet (a directory that cannot
        be written, a token the server refuses). Reads only: it writes nothing. The credentials
        that name a sink failing its check are not planned (`blocked`), so that no run creates
        a credential only to undo it. A sink written before this method existed may lack it:
        it is then taken as writable.
        """
        ...

    async def read(self, service: str, credential: str) -> str | None:
        """The `client_id` this sink holds for the credential, or None."""
        ...

    async def read_record(self, service: str, credential: str) -> SinkRecord | None:
        """The whole stored record, secret included, or None; to heal a sibling sink from it."""
        ...

    async def write(self, record: SinkRecord) -> Previous:
        """Store the record durably and return what it replaced; raise SinkError on failure."""
        ...

    async def restore(
        self, service: str, credential: str, client_id: str, previous: Previous
    ) -> None:
        """Undo a write of `client_id`: put `previous` back (remove the record if it was
        NOTHING), but only while the sink still holds `client_id`."""
        ...

    async def delete(self, service: str, credential: str, client_id: str) -> None:
        """Remove the stored record if it still holds `client_id`."""
        ...

    def lock_path(self) -> Path | None:
        """The file overlapping runs take turns on (see `locking`); None for a remote sink."""
        ...

    def sweep(self, before: float) -> int:
        """Remove temp files older than `before` a killed run left (they hold secrets); blocking.

        Called with the sink's lock held. Returns how many were removed (0 for a remote sink).
        """
        ...

    async def aclose(self) -> None:
        """Release resources; flush anything buffered."""
        ...


class SinkType(Protocol):
    """A sink class as registered in the `provisioner.sinks` entry-point group."""

    options_model: ClassVar[type[SinkOptions]]

    @classmethod
    def options_from_uri(cls, target: str) -> dict[str, Any]:
        """Options from the part of a `--sink TYPE:TARGET` URI after `TYPE:`."""
        ...

    def __call__(self, name: str, options: Any, context: SinkContext) -> Sink: ...
