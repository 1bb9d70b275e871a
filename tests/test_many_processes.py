"""Several server processes on one store: shared writes, shared state, metrics summed over workers."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import official_vms_service
from tests.servers import REDIS_URL, RunningServer, provision_database, require_redis, start_server
from tests.wire_client import signed_request
from vmsres.server.masterkey import generate_key_text
from vmsres.server.settings import MASTER_KEY_ENV


@pytest.fixture
def pg_url() -> Iterator[str]:
    with provision_database("postgresql") as url:
        assert url is not None
        yield url


def test_two_processes_on_one_postgresql_see_each_others_writes(tmp_path: Path, pg_url: str) -> None:
    require_redis()
    shared = ["--redis-url", REDIS_URL]
    # Two hosts of one deployment share the master key; each embedded default would differ.
    key = {MASTER_KEY_ENV: generate_key_text().strip()}
    # Started at the same moment on an empty database: both run the migrations, which must
    # serialize on the advisory lock (without it one fails on "relation already exists").
    with ThreadPoolExecutor(2) as pool:
        starting = [
            pool.submit(start_server, tmp_path / "a", shared, env=key, database_url=pg_url),
            pool.submit(
                start_server, tmp_path / "b", [*shared, "--workers", "2"], env=key, database_url=pg_url
            ),
        ]
        errors = [f.exception() for f in starting]
        running = [f.result() for f in starting if f.exception() is None]
    if any(errors):
        for server in running:
            server.stop()
        raise AssertionError(f"a server failed to start: {errors}")
    first, second = running
    try:
        assert first.url != second.url
        via_first = official_vms_service(first)
        key = via_first.create_tts({"Name": "跨进程通知", "TtsTemplateContent": "hi #x#"})["Result"][
            "ResourceKey"
        ]
        via_second = official_vms_service(second)
        seen = via_second.query_open_get_resource({"Type": 1, "Keyword": "进程"})["Result"]
        assert [r["ResourceKey"] for r in seen["Records"]] == [key] and seen["Total"] == 1

        via_second.open_update_resource({"ResourceKey": key, "Name": "renamed elsewhere"})
        via_first = official_vms_service(first)
        record = via_first.query_open_get_resource({"Type": 1, "Keyword": key})["Result"]["Records"][0]
        assert record["Name"] == "renamed elsewhere"
        for server in (first, second):
            assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        first.stop()
        second.stop()


def _request_counts(server: RunningServer) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{server.url}/metrics").text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "vmsres_requests_total":
                key = (sample.labels["action"], sample.labels["status"])
                counts[key] = counts.get(key, 0) + sample.value
    return counts


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_count_every_request_across_workers(
    tmp_path: Path, database_url: str | None, workers: int
) -> None:
    server = start_server(tmp_path / "data", ["--workers", str(workers)], database_url=database_url)
    try:
        for _ in range(30):
            assert signed_request(server, "QueryOpenGetResource", {"Type": 0}).status_code == 200
        for _ in range(3):
            bad = signed_request(server, "QueryOpenGetResource", {"Type": 0}, secret_key="wrong")
            assert bad.status_code == 401
        assert signed_request(server, "NoSuchAction", {}).status_code == 400
        # Whichever worker answers /metrics, it reports the sum over all workers.
        for _ in range(4):
            counts = _request_counts(server)
            assert counts[("QueryOpenGetResource", "200")] == 30
            assert counts[("QueryOpenGetResource", "401")] == 3
            assert counts[("other", "400")] == 1
        latency = httpx.get(f"{server.url}/metrics").text
        assert 'vmsres_request_duration_seconds_count{action="QueryOpenGetResource"} 33.0' in latency
    finally:
        server.stop()
