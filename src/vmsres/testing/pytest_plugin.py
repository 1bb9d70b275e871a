"""pytest fixtures for a real vmsres server (registered through the ``pytest11`` entry point).

- ``vms_server`` (session): one VmsServer for the whole run.
- ``vms_account`` (function): a fresh account with its own key on it, so each test sees an empty
  library without a restart.
- ``vms_sdk``: the official `volcengine` VmsService configured for ``vms_account``.
- ``vms_client``: a ``vmsres.client.Client`` for ``vms_account``.
- ``--vms-review auto|manual``: the review mode of ``vms_server`` (default auto).

pytest loads this module in every project where vmsres is installed, so it imports nothing of the
server until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from vmsres.client import Client
    from vmsres.testing.server import Account, VmsServer

REVIEW_OPTION = "--vms-review"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vmsres", "vmsres test server")
    group.addoption(
        REVIEW_OPTION,
        choices=("auto", "manual"),
        default="auto",
        help="review mode of the vms_server fixture: auto (decided at once) or manual "
        "(State 0 until vms_server.approve/reject); default auto",
    )


@pytest.fixture(scope="session")
def vms_server(request: pytest.FixtureRequest) -> Iterator[VmsServer]:
    """A vmsres server in this process for the whole session (127.0.0.1, a free port, temporary
    store)."""
    from vmsres.testing.server import VmsServer

    with VmsServer(review=request.config.getoption(REVIEW_OPTION)) as server:
        yield server


@pytest.fixture
def vms_account(vms_server: VmsServer) -> Account:
    """A new account with its own key: this test's library starts empty and no other test sees it."""
    return vms_server.new_account()


@pytest.fixture
def vms_sdk(vms_server: VmsServer, vms_account: Account) -> Any:
    """The official `volcengine` SDK's VmsService for ``vms_account``.

    VmsService is a process-wide singleton that constructing resets, so it is configured again
    for every test that uses it.
    """
    try:
        from volcengine.vms.VmsService import VmsService
    except ImportError:
        pytest.fail("the vms_sdk fixture needs the official SDK: pip install volcengine", pytrace=False)
    service = VmsService()
    service.set_scheme("http")
    service.set_host(vms_server.host)
    service.set_ak(vms_account.access_key)
    service.set_sk(vms_account.secret_key)
    return service


@pytest.fixture
def vms_client(vms_server: VmsServer, vms_account: Account) -> Iterator[Client]:
    """A ``vmsres.client.Client`` for ``vms_account``."""
    from vmsres.client import Client

    with Client(vms_account.access_key, vms_account.secret_key, endpoint=vms_server.endpoint) as client:
        yield client
