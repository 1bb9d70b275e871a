"""SIGKILL at random moments under mixed load: nothing acknowledged is lost, nothing is half made."""

from __future__ import annotations

import asyncio
import hashlib
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.audio_factory import make_wav
from tests.servers import RunningServer, start_server
from tests.wire_client import signed_request
from vmsres.server.service.services import open_services
from vmsres.server.settings import Settings

ROUNDS = 20
CLIENTS = 3
SEED = 20261126
# Bounds the whole test whatever the machine: a round stops starting new work past this.
TOTAL_BUDGET_SECONDS = 90


@dataclass
class Known:
    """What a client may claim about one resource it committed itself."""

    sha256: str
    # The names the resource may have: one once a rename was answered, two while in doubt.
    names: set[str]
    # True: must exist; False: must be gone; None: a delete was sent but never answered.
    exists: bool | None = True


@dataclass
class Client:
    index: int
    rng: random.Random
    known: dict[str, Known] = field(default_factory=dict)
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)


def _ok(response: httpx.Response) -> bool:
    return response.status_code == 200


def _commit(server: RunningServer, client: Client, name: str, audio: bytes) -> None:
    response = signed_request(server, "GetResourceUploadUrl", {"FileName": name})
    if not _ok(response):
        client.errors.append(f"upload url: {response.status_code} {response.text}")
        return
    put = httpx.put(response.json()["Result"]["UploadUrl"], content=audio, timeout=30)
    if put.status_code != 200:
        client.errors.append(f"upload: {put.status_code} {put.text}")
        return
    response = signed_request(server, "CommitResourceUpload", {"FileName": name, "Type": 0})
    if not _ok(response):
        client.errors.append(f"commit: {response.status_code} {response.text}")
        return
    client.known[response.json()["Result"]["ResourceKey"]] = Known(hashlib.sha256(audio).hexdigest(), {name})
    client.acknowledged += 1


def _work(server: RunningServer, client: Client, stop: threading.Event, round_: int) -> None:
    serial = 0
    while not stop.is_set():
        serial += 1
        live = [k for k, v in client.known.items() if v.exists is True and len(v.names) == 1]
        op = client.rng.choice(["commit", "commit", "rename", "delete"] if live else ["commit"])
        try:
            if op == "commit":
                # A different length each time, so every resource has its own bytes to check.
                audio = make_wav(0.2 + client.rng.random() * 0.3, sample_rate=8000)
                _commit(server, client, f"r{round_}-c{client.index}-{serial}.wav", audio)
            elif op == "rename":
                key = client.rng.choice(live)
                new = f"renamed-{round_}-{client.index}-{serial}"
                client.known[key].names.add(new)
                response = signed_request(
                    server, "OpenUpdateResource", query={"ResourceKey": key, "Name": new}
                )
                if _ok(response):
                    client.known[key].names = {new}
                    client.acknowledged += 1
                else:
                    client.errors.append(f"rename: {response.status_code} {response.text}")
            else:
                key = client.rng.choice(live)
                client.known[key].exists = None
                response = signed_request(server, "OpenDeleteResource", query={"ResourceKey": key})
                if _ok(response):
                    client.known[key].exists = False
                    client.acknowledged += 1
                else:
                    client.errors.append(f"delete: {response.status_code} {response.text}")
        except httpx.TransportError:
            return  # the server is gone; whatever was in flight stays "in doubt"


def _check_store(server: RunningServer, clients: list[Client]) -> None:
    rows = {
        r[0]: r
        for r in server.sql("SELECT resource_key, name, blob_key, rendition_key, sha256 FROM resources")
    }
    blobs = server.data_dir / "blobs"
    # Nothing half made: every row's audio is there.
    for key, name, blob_key, rendition_key, _ in rows.values():
        assert (blobs / blob_key).is_file(), f"{key} ({name}) lost its audio {blob_key}"
        if rendition_key:
            assert (blobs / rendition_key).is_file(), f"{key} lost its rendition"
    # Nothing acknowledged is lost.
    for client in clients:
        for key, known in client.known.items():
            row = rows.get(key)
            if known.exists is True:
                assert row is not None, f"acknowledged commit {key} is gone"
            elif known.exists is False:
                assert row is None, f"acknowledged delete of {key} came back"
            if row is None:
                continue
            assert row[1] in known.names, f"{key} is named {row[1]!r}, expected one of {known.names}"
            assert row[4] == known.sha256
            assert hashlib.sha256((blobs / row[2]).read_bytes()).hexdigest() == known.sha256
    [(integrity,)] = server.sql("PRAGMA integrity_check")
    assert integrity == "ok"


def _collect_far_future(data_dir: Path) -> None:
    async def collect() -> None:
        services = open_services(Settings(data_dir=str(data_dir)), clock=lambda: time.time() + 10**7)
        try:
            await services.ingest.collect_garbage()
            referenced = await services.resources.store.referenced_blob_keys()
            assert set(await services.blobs.list_keys("accounts/")) == set(referenced)
            assert await services.blobs.list_keys("staging/") == []
        finally:
            await services.close()

    asyncio.run(collect())


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = random.Random(SEED)
    clients = [Client(i, random.Random(rng.random())) for i in range(CLIENTS)]
    deadline = time.monotonic() + TOTAL_BUDGET_SECONDS
    rounds = 0
    server = start_server(data, ["--gc-interval", "0"])
    try:
        while rounds < ROUNDS and time.monotonic() < deadline:
            rounds += 1
            stop = threading.Event()
            before = sum(c.acknowledged for c in clients)
            # Kill after a random number of acknowledged writes, so some requests are in flight.
            target = before + rng.randint(1, 4)
            threads = [
                threading.Thread(target=_work, args=(server, c, stop, rounds), daemon=True) for c in clients
            ]
            for thread in threads:
                thread.start()
            wait_until = time.monotonic() + 20
            while sum(c.acknowledged for c in clients) < target and time.monotonic() < wait_until:
                if not any(t.is_alive() for t in threads):
                    break
                time.sleep(0.005)  # a bounded poll, finer than wait_for's, to kill mid-request
            acknowledged = sum(c.acknowledged for c in clients)
            assert acknowledged >= target or not any(t.is_alive() for t in threads), (
                f"only {acknowledged - before} of {target - before} writes acknowledged in 20 s"
            )
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
                assert not thread.is_alive()
            errors = [e for c in clients for e in c.errors]
            assert not errors, errors
            server = start_server(data, ["--gc-interval", "0"])
            _check_store(server, clients)
        assert sum(c.acknowledged for c in clients) >= rounds
    finally:
        server.stop()
    if rounds < ROUNDS:
        pytest.fail(f"only {rounds} rounds fit in {TOTAL_BUDGET_SECONDS}s")
    _collect_far_future(data)
