"""An independent fake of the documented Streamkap API (issue 20), for end-to-end tests.

Written from the API notes (/work/shared/streamkap-api.md, docs/api.md) only, never from the
project's simulator: where both answer alike, the provisioner is not merely agreeing with itself.
It serves the token calls, `GET /auth/roles`, `/auth/client-credentials` and `/project-keys`.

    with serve_fake(FakeApi(activation_reads=2)) as served:
        run_cli("apply", manifests, cwd=tmp_path, env=served.env())
        assert {key.name for key in served.fake.keys.values()} == {...}
"""

from tests.support.fake_api.checks import Refused
from tests.support.fake_api.project_keys import (
    ACTIVE,
    CREATING,
    DELETE_FAILED,
    DELETING,
    FakeKey,
)
from tests.support.fake_api.serve import ServedFake, serve_fake
from tests.support.fake_api.state import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    ROLES,
    FakeApi,
    FakeClientCredential,
)

__all__ = [
    "ACTIVE",
    "ADMIN_CLIENT_ID",
    "ADMIN_SECRET",
    "CREATING",
    "DELETE_FAILED",
    "DELETING",
    "ROLES",
    "FakeApi",
    "FakeClientCredential",
    "FakeKey",
    "Refused",
    "ServedFake",
    "serve_fake",
]
