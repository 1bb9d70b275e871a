"""Dependency faults get documented answers, never InternalError (docs/reliability.md).

PostgreSQL backends terminated under load and at chosen moments, a PostgreSQL that goes away and
comes back (through a loopback proxy the test stops), a Redis server the test starts and stops,
and SQLite and the blobs on a small full filesystem. All traffic goes to loopback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio_factory import make_wav
from tests.servers import (
    PG_ADMIN_URL,
    RunningServer,
    provision_database,
    skip_unless_ci,
    start_server,
    wait_for,
)
from tests.wire_client import error_code, signed_request

# --- helpers ------------------------------------------------------------------------------------


def create_tts(server: RunningServer, name: str, token: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"Name": name, "TtsTemplateContent": "hello #who#"}
    if token:
        body["ClientToken"] = token
    return signed_request(server, "OpenCreateTts", body)


def list_tts(server: RunningServer) -> httpx.Response:
    return signed_request(server, "QueryOpenGetResource", {"Type": 1, "Limit": 5})


def assert_unavailable(response: httpx.Response) -> None:
    """503 ServiceUnavailable with a Retry-After, the documented answer to a dependency outage."""
    assert response.status_code == 503, response.text
    assert error_code(response) == "ServiceUnavailable"
    assert int(response.headers["retry-after"]) >= 1


def readyz(server: RunningServer) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=30)


def names_in_store(server: RunningServer, prefix: str) -> dict[str, list[str]]:
    rows = server.sql("SELECT name, resource_key FROM resources WHERE name LIKE :p", {"p": prefix + "%"})
    found: dict[str, list[str]] = {}
    for name, key in rows:
        found.setdefault(name, []).append(key)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pg_url() -> Iterator[str]:
    with provision_database("postgresql") as url:
        assert url is not None
        yield url


# --- PostgreSQL -------------------------------------------------------------------------------

LOAD_THREADS = 3
LOAD_REQUESTS = 60


def test_terminated_postgresql_backends_under_load(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    database = pg_url.rsplit("/", 1)[1]
    server = start_server(tmp_path / "data", ["--workers", "2"], database_url=pg_url)
    stop = threading.Event()
    terminated = 0

    def terminate_backends() -> None:
        nonlocal terminated
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                terminated += sum(1 for (done,) in rows if done)
                stop.wait(0.1)  # pacing of the fault, not synchronization

    def client(worker: int) -> list[tuple[str, str, httpx.Response]]:
        answers = []
        for i in range(LOAD_REQUESTS):
            if i % 2:
                name = f"load-{worker}-{i}"
                answers.append(("write", name, create_tts(server, name)))
            else:
                answers.append(("read", "", list_tts(server)))
        return answers

    try:
        killer = threading.Thread(target=terminate_backends)
        killer.start()
        try:
            with ThreadPoolExecutor(LOAD_THREADS) as pool:
                results = [a for answers in pool.map(client, range(LOAD_THREADS)) for a in answers]
        finally:
            stop.set()
            killer.join(timeout=30)
        assert terminated > 0, "the test terminated no backend, so it showed nothing"

        statuses: dict[int, int] = {}
        for _, _, response in results:
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code != 200:
                assert_unavailable(response)
        assert statuses.get(200, 0) > 0, statuses

        stored = names_in_store(server, "load-")
        for kind, name, response in results:
            if kind != "write":
                continue
            if response.status_code == 200:
                # Acknowledged: made exactly once, under the key the client was given.
                assert stored.get(name) == [response.json()["Result"]["ResourceKey"]], name
            else:
                # Not acknowledged (outcome unknown or not made): never made twice.
                assert len(stored.get(name, [])) <= 1, name
        # The server answers normally once the faults stop.
        assert create_tts(server, "load-after").status_code == 200
        assert readyz(server).status_code == 200
    finally:
        stop.set()
        server.stop()
    assert "InternalError" not in "".join(server.log_lines())


# A trigger that makes the first insert into resources terminate its own backend: a sequence
# counts the firings, since a sequence keeps its value when the transaction rolls back.
_SELF_TERMINATE = (
    "CREATE SEQUENCE fault_firings",
    """CREATE FUNCTION terminate_first_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF nextval('fault_firings') = 1 THEN
            PERFORM pg_terminate_backend(pg_backend_pid());
            PERFORM pg_sleep(5);
        END IF;
        RETURN NEW;
    END $$""",
)


def install_fault(server: RunningServer, trigger: str) -> None:
    for statement in (*_SELF_TERMINATE, trigger):
        server.sql(statement)


def firings(server: RunningServer) -> int:
    [(value, called)] = server.sql("SELECT last_value, is_called FROM fault_firings")
    return int(value) if called else 0


def test_connection_lost_before_commit_is_run_again(tmp_path: Path, pg_url: str) -> None:
    server = start_server(tmp_path / "data", database_url=pg_url)
    try:
        install_fault(
            server,
            "CREATE TRIGGER fault AFTER INSERT ON resources FOR EACH ROW EXECUTE FUNCTION terminate_first_insert()",
        )
        response = create_tts(server, "before-commit")
        assert response.status_code == 200, response.text
        # The insert ran twice (the first connection died inside the transaction), and is stored once.
        assert firings(server) == 2
        assert names_in_store(server, "before-commit") == {
            "before-commit": [response.json()["Result"]["ResourceKey"]]
        }
    finally:
        server.stop()
    assert "running it again" in "".join(server.log_lines())


def test_connection_lost_during_commit_answers_503_and_a_retry_with_the_token_makes_it_once(
    tmp_path: Path, pg_url: str
) -> None:
    server = start_server(tmp_path / "data", database_url=pg_url)
    try:
        # Deferred: it fires while COMMIT runs, so the client loses the connection not knowing
        # whether the commit happened.
        install_fault(
            server,
            "CREATE CONSTRAINT TRIGGER fault AFTER INSERT ON resources DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION terminate_first_insert()",
        )
        token = uuid.uuid4().hex
        first = create_tts(server, "during-commit", token)
        assert_unavailable(first)
        assert "may or may not" in first.json()["ResponseMetadata"]["Error"]["Message"]
        assert firings(server) == 1

        again = create_tts(server, "during-commit", token)
        assert again.status_code == 200, again.text
        key = again.json()["Result"]["ResourceKey"]
        assert names_in_store(server, "during-commit") == {"during-commit": [key]}
        # A third send is answered from the stored result, not made again.
        assert create_tts(server, "during-commit", token).json()["Result"]["ResourceKey"] == key
        assert names_in_store(server, "during-commit") == {"during-commit": [key]}
    finally:
        server.stop()


class LoopbackProxy:
    """A TCP proxy on a fixed loopback port that can go away (refusing and cutting connections)
    and come back: PostgreSQL going down, as the server sees it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the accept() blocked in the other thread; close() alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_postgresql_down_answers_503_and_recovers_without_restart(tmp_path: Path, pg_url: str) -> None:
    target = int(pg_url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    proxy = LoopbackProxy(target)
    proxy.start()
    host_part = pg_url.split("@", 1)[1].split("/", 1)[0]
    proxied = pg_url.replace(f"@{host_part}/", f"@127.0.0.1:{proxy.port}/")
    server = start_server(tmp_path / "data", database_url=proxied)
    try:
        assert create_tts(server, "db-before").status_code == 200
        proxy.stop()
        assert_unavailable(create_tts(server, "db-down"))
        assert_unavailable(list_tts(server))
        not_ready = readyz(server)
        assert not_ready.status_code == 503
        report = not_ready.json()
        assert report["status"] == "not ready" and report["reason"].startswith("database:")
        assert report["dependencies"]["database"]["status"] == "failed"

        proxy.start()
        wait_for(lambda: readyz(server).status_code == 200, what="/readyz after PostgreSQL returned")
        assert create_tts(server, "db-after").status_code == 200
        assert list_tts(server).status_code == 200
        assert names_in_store(server, "db-").keys() == {"db-before", "db-after"}
    finally:
        server.stop()
        proxy.stop()
    assert "InternalError" not in "".join(server.log_lines())


# --- Redis ------------------------------------------------------------------------------------


class RedisServer:
    def __init__(self, binary: str, port: int, workdir: Path) -> None:
        self.binary, self.port, self.workdir = binary, port, workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        wait_for(lambda: _pings(client), what="redis-server to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def test_redis_down_with_rate_limits_answers_503_and_recovers(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    skip_unless_ci(None if binary else "redis-server is not installed", "redis-server")
    assert binary is not None
    redis_server = RedisServer(binary, free_port(), tmp_path)
    redis_server.start()
    args = ["--redis-url", f"redis://127.0.0.1:{redis_server.port}/0", "--rate-per-key", "1000/s"]
    server = start_server(tmp_path / "data", args)
    try:
        assert list_tts(server).status_code == 200
        assert readyz(server).json()["dependencies"]["redis"] == {"status": "ok"}

        redis_server.stop()
        assert_unavailable(list_tts(server))
        assert_unavailable(create_tts(server, "redis-down"))
        not_ready = readyz(server)
        assert not_ready.status_code == 503
        assert not_ready.json()["reason"].startswith("redis:")
        assert not_ready.json()["dependencies"]["redis"]["status"] == "failed"

        redis_server.start()  # same port, empty: the rate-limit script must be loaded again
        wait_for(lambda: readyz(server).status_code == 200, what="/readyz after Redis returned")
        assert list_tts(server).status_code == 200
        assert create_tts(server, "redis-after").status_code == 200
    finally:
        server.stop()
        redis_server.stop()
    assert names_in_store(server, "redis-").keys() == {"redis-after"}
    assert "InternalError" not in "".join(server.log_lines())


# --- A full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs, which only root can mount."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        skip_unless_ci("mounting a small tmpfs needs root", "full-disk")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        skip_unless_ci(f"cannot mount a tmpfs: {mounted.stderr.strip()}", "full-disk")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(path: Path) -> None:
    """Write ``path`` until the filesystem has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)


def test_full_disk_fails_writes_clearly_keeps_reads_and_recovers(tmp_path: Path, small_disk: Path) -> None:
    import sqlite3

    database = small_disk / "vmsres.db"
    server = start_server(
        tmp_path / "data", ["--blob-url", str(small_disk / "blobs")], database_url=f"sqlite:///{database}"
    )
    try:
        before = create_tts(server, "disk-before")
        assert before.status_code == 200
        upload_url = signed_request(server, "GetResourceUploadUrl", {"FileName": "disk.wav"}).json()[
            "Result"
        ]["UploadUrl"]
        # Empty the write-ahead log, so the next write needs new space rather than reusing the log's.
        with contextlib.closing(sqlite3.connect(database)) as conn:
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        filler = small_disk / "filler"
        fill(filler)

        refused = create_tts(server, "disk-full")
        assert refused.status_code == 507, refused.text
        assert error_code(refused) == "InsufficientStorage"
        audio = make_wav(0.5)
        refused_upload = httpx.put(upload_url, content=audio, timeout=30)
        assert refused_upload.status_code == 507, refused_upload.text
        assert error_code(refused_upload) == "InsufficientStorage"
        listed = list_tts(server)
        assert listed.status_code == 200
        assert [r["Name"] for r in listed.json()["Result"]["Records"]] == ["disk-before"]
        report = readyz(server)
        assert report.status_code == 200 and report.json()["status"] == "degraded"
        assert report.json()["dependencies"]["storage"]["status"] == "degraded"

        filler.unlink()
        after = create_tts(server, "disk-after")
        assert after.status_code == 200, after.text
        assert httpx.put(upload_url, content=audio, timeout=30).status_code == 200
        committed = signed_request(server, "CommitResourceUpload", {"FileName": "disk.wav", "Type": 0})
        assert committed.status_code == 200, committed.text
        report = readyz(server)
        assert report.status_code == 200 and report.json()["status"] == "ready"
    finally:
        server.stop()
    assert names_in_store(server, "disk-").keys() == {"disk-before", "disk-after"}
    assert "InternalError" not in "".join(server.log_lines())


def test_sqlite_locked_by_another_process_answers_503_and_recovers(tmp_path: Path) -> None:
    """A writer outside the server holding the SQLite lock past busy_timeout is an outage, not a bug."""
    import sqlite3

    server = start_server(tmp_path / "data")
    try:
        assert create_tts(server, "lock-before").status_code == 200
        holder = sqlite3.connect(server.data_dir / "vmsres.db", isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            refused = create_tts(server, "lock-held")
            assert_unavailable(refused)
            listed = list_tts(server)
            assert listed.status_code == 200, listed.text
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        after = create_tts(server, "lock-after")
        assert after.status_code == 200, after.text
        assert sorted(names_in_store(server, "lock-")) == ["lock-after", "lock-before"]
    finally:
        server.stop()


def test_sqlite_table_missing_from_the_store_answers_503_and_recovers(tmp_path: Path) -> None:
    """A table taken out of the store by someone else (here: renamed away, then back) makes the
    requests that need it answer 503, with a log line naming the miss, and never 500; once the
    table is back they succeed again without a restart."""
    import sqlite3

    server = start_server(tmp_path / "data")
    try:
        assert create_tts(server, "gone-before").status_code == 200
        with contextlib.closing(
            sqlite3.connect(server.data_dir / "vmsres.db", isolation_level=None)
        ) as other:
            other.execute("PRAGMA busy_timeout=5000")
            other.execute("ALTER TABLE resources RENAME TO resources_away")
            try:
                assert_unavailable(create_tts(server, "gone-during"))
                assert_unavailable(list_tts(server))
            finally:
                other.execute("ALTER TABLE resources_away RENAME TO resources")
        after = create_tts(server, "gone-after")
        assert after.status_code == 200, after.text
        assert list_tts(server).status_code == 200
        assert sorted(names_in_store(server, "gone-")) == ["gone-after", "gone-before"]
        assert any('"sqlite_schema_miss"' in line for line in server.log_lines())
    finally:
        server.stop()
