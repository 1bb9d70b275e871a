from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import BACKENDS, RunningServer, provision_database, start_embedded_server, start_server


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with provision_database(request.param) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A fresh database for one test: None on SQLite (the server's data dir holds it)."""
    with provision_database(request.param) as url:
        yield url


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[RunningServer]:
    """A real server on loopback in a thread of this process, shared by the tests of one module
    (they use distinct names)."""
    running = start_embedded_server(tmp_path_factory.mktemp("server"), database_url=module_database_url)
    yield running
    running.stop()


@pytest.fixture
def fresh_server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    """A server of one test's own, in a thread of this process."""
    running = start_embedded_server(tmp_path / "data", database_url=database_url)
    yield running
    running.stop()


@pytest.fixture
def fresh_process_server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    """A `vmsres serve` process of one test's own: for what only a process has (its log, its exit)."""
    running = start_server(tmp_path / "data", database_url=database_url)
    yield running
    running.stop()


def official_vms_service(server: RunningServer, ak: str | None = None, sk: str | None = None) -> Any:
    """The `volcengine` SDK's VmsService pointed at ``server``.

    VmsService is a process-wide singleton and constructing it resets host and keys, so every
    caller configures it again.
    """
    from volcengine.vms.VmsService import VmsService

    service = VmsService()
    service.set_host(server.host_port)
    service.set_scheme("http")
    service.set_ak(ak or server.access_key)
    service.set_sk(sk or server.secret_key)
    return service


def generated_vms_api(server: RunningServer, ak: str | None = None, sk: str | None = None) -> Any:
    """The generated SDK (`volcenginesdk-vms`) pointed at ``server``."""
    import volcenginesdkcore
    import volcenginesdkvms

    configuration = volcenginesdkcore.Configuration()
    configuration.ak = ak or server.access_key
    configuration.sk = sk or server.secret_key
    configuration.region = "cn-north-1"
    configuration.host = server.host_port
    configuration.scheme = "http"
    return volcenginesdkvms.VMSApi(volcenginesdkcore.ApiClient(configuration))


@pytest.fixture
def vms(server: RunningServer) -> Any:
    return official_vms_service(server)


@pytest.fixture
def vms_api(server: RunningServer) -> Any:
    return generated_vms_api(server)
