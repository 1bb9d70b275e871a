"""Both blob stores against the same tests: disk in a temporary folder, S3 against moto on loopback."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest

from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, create_bucket, new_bucket, s3_endpoint, s3_env  # noqa: F401
from vmsres.server.blobs import (
    BlobNotFound,
    BlobStorageError,
    BlobStore,
    DiskBlobStore,
    S3BlobStore,
    open_blob_store,
)

run = asyncio.run


@pytest.fixture(params=["disk", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "disk":
        blob_store = open_blob_store(str(tmp_path / "blobs"))
    else:
        bucket = request.getfixturevalue("new_bucket")
        blob_store = open_blob_store(f"s3://{bucket}/some/prefix")
    try:
        yield blob_store
    finally:
        run(blob_store.close())


@pytest.fixture
def disk(tmp_path: Path) -> DiskBlobStore:
    blob_store = open_blob_store(f"file://{tmp_path / 'blobs'}")
    assert isinstance(blob_store, DiskBlobStore)
    return blob_store


@pytest.fixture
def s3_store(new_bucket: str) -> Iterator[S3BlobStore]:  # noqa: F811
    blob_store = open_blob_store(f"s3://{new_bucket}")
    assert isinstance(blob_store, S3BlobStore)
    try:
        yield blob_store
    finally:
        run(blob_store.close())


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # trust_env=False: no proxy from the environment may carry test traffic off the machine.
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def dead_port() -> Iterator[int]:
    # Bound but never listening: connections are refused, and no other process can take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _files_under(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


# --- the contract, on both stores ---------------------------------------------------------------


def test_put_then_get_returns_the_same_bytes(store: BlobStore) -> None:
    data = bytes(range(256)) * 40
    run(store.put("accounts/12/originals/abc.mp3", data))
    assert run(store.get("accounts/12/originals/abc.mp3")) == data


def test_an_empty_blob_round_trips(store: BlobStore) -> None:
    run(store.put("empty.bin", b""))
    assert run(store.get("empty.bin")) == b""
    assert run(store.exists("empty.bin"))


def test_put_overwrites(store: BlobStore) -> None:
    run(store.put("a/key.wav", b"first version, longer than the second"))
    run(store.put("a/key.wav", b"second"))
    assert run(store.get("a/key.wav")) == b"second"
    assert run(store.list_keys("a/")) == ["a/key.wav"]


def test_get_of_a_missing_key_raises_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound) as info:
        run(store.get("accounts/1/nothing.mp3"))
    assert info.value.key == "accounts/1/nothing.mp3"


def test_a_folder_of_keys_is_not_itself_a_blob(store: BlobStore) -> None:
    run(store.put("dir/inner.bin", b"x"))
    assert not run(store.exists("dir"))
    with pytest.raises(BlobNotFound):
        run(store.get("dir"))
    run(store.delete("dir"))
    assert run(store.get("dir/inner.bin")) == b"x"


def test_exists_and_delete(store: BlobStore) -> None:
    assert not run(store.exists("k/v.bin"))
    run(store.put("k/v.bin", b"payload"))
    assert run(store.exists("k/v.bin"))
    run(store.delete("k/v.bin"))
    assert not run(store.exists("k/v.bin"))
    with pytest.raises(BlobNotFound):
        run(store.get("k/v.bin"))


def test_delete_is_idempotent(store: BlobStore) -> None:
    run(store.delete("never/stored.bin"))
    run(store.put("once.bin", b"1"))
    run(store.delete("once.bin"))
    run(store.delete("once.bin"))
    assert not run(store.exists("once.bin"))


def test_list_keys_by_plain_string_prefix(store: BlobStore) -> None:
    keys = [
        "accounts/1/originals/a.mp3",
        "accounts/1/originals/b.mp3",
        "accounts/1/play/a.wav",
        "accounts/12/originals/c.mp3",
        "accounts/2/originals/d.mp3",
        "top.bin",
    ]
    for key in reversed(keys):
        run(store.put(key, key.encode()))
    assert run(store.list_keys("")) == keys
    assert run(store.list_keys("accounts/1/")) == keys[:3]
    # As in S3, a prefix is a string prefix, not a folder: "accounts/1" also covers account 12.
    assert run(store.list_keys("accounts/1")) == keys[:4]
    assert run(store.list_keys("accounts/1/originals/")) == keys[:2]
    assert run(store.list_keys("accounts/1/originals/a")) == keys[:1]
    assert run(store.list_keys("accounts/3/")) == []
    assert run(store.list_keys("nowhere/at/all/")) == []
    assert run(store.list_keys("t")) == ["top.bin"]


BAD_KEYS = [
    "",
    "/abs/path.mp3",
    "../escape.mp3",
    "a/../../escape.mp3",
    "a/..",
    "a/./b.mp3",
    ".",
    "a//b.mp3",
    "a/b/",
    "a\\b.mp3",
    "..\\escape.mp3",
    "a/b\x00.mp3",
    "a/.vmsres-tmp-1234",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        run(store.put(key, b"x"))
    with pytest.raises(ValueError):
        run(store.get(key))
    with pytest.raises(ValueError):
        run(store.delete(key))
    with pytest.raises(ValueError):
        run(store.exists(key))
    with pytest.raises(ValueError):
        store.presign_put(key, 60)
    with pytest.raises(ValueError):
        store.presign_get(key, 60)


@pytest.mark.parametrize("prefix", ["/abs", "../", "a/../", "a//", "a\\", "\x00", "a/.."])
def test_unsafe_prefixes_are_rejected(store: BlobStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        run(store.list_keys(prefix))


@pytest.mark.parametrize("expires", [0, -1, 7 * 24 * 3600 + 1])
def test_presign_expiry_must_be_in_range(store: BlobStore, expires: int) -> None:
    with pytest.raises(ValueError):
        store.presign_put("a.mp3", expires)
    with pytest.raises(ValueError):
        store.presign_get("a.mp3", expires)


def test_check_passes_on_working_storage(store: BlobStore) -> None:
    run(store.check())


# --- disk only -----------------------------------------------------------------------------------


def test_disk_stores_keys_as_paths_under_the_root_and_leaves_no_temporary_files(
    disk: DiskBlobStore,
) -> None:
    for index in range(5):
        run(disk.put("accounts/7/originals/x.mp3", f"version {index}".encode()))
    run(disk.put("accounts/7/play/y.wav", b"y"))
    assert _files_under(disk.root) == ["accounts/7/originals/x.mp3", "accounts/7/play/y.wav"]
    assert (disk.root / "accounts/7/originals/x.mp3").read_bytes() == b"version 4"
    # A readiness probe also cleans up after itself.
    run(disk.check())
    assert _files_under(disk.root) == ["accounts/7/originals/x.mp3", "accounts/7/play/y.wav"]


def test_disk_put_failing_before_the_rename_keeps_the_old_blob(
    disk: DiskBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(disk.put("k/blob.bin", b"old contents"))

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error (simulated by the test)")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(BlobStorageError):
        run(disk.put("k/blob.bin", b"new contents that never land"))
    monkeypatch.undo()
    assert run(disk.get("k/blob.bin")) == b"old contents"
    assert _files_under(disk.root) == ["k/blob.bin"]


def test_disk_put_cut_short_mid_write_keeps_the_old_blob(disk: DiskBlobStore) -> None:
    # A real partial write: the file-size limit makes write() stop part-way and then fail with EFBIG,
    # as a full disk would.
    old = b"o" * 1000
    run(disk.put("k/big.bin", old))
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(BlobStorageError):
            run(disk.put("k/big.bin", b"n" * (256 * 1024)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert run(disk.get("k/big.bin")) == old
    assert _files_under(disk.root) == ["k/big.bin"]


def test_disk_readers_never_see_a_partial_blob(disk: DiskBlobStore) -> None:
    versions = (b"A" * (512 * 1024), b"B" * (768 * 1024))
    run(disk.put("race/blob.bin", versions[0]))
    path = disk.root / "race" / "blob.bin"
    done = threading.Event()
    seen: list[int] = []
    torn: list[int] = []

    def reader() -> None:
        while not done.is_set():
            data = path.read_bytes()
            seen.append(len(data))
            if data not in versions:
                torn.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(40):
            run(disk.put("race/blob.bin", versions[round_ % 2]))
    finally:
        done.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert seen
    assert torn == []


def test_disk_put_where_a_blob_blocks_the_folder_is_a_storage_error(disk: DiskBlobStore) -> None:
    run(disk.put("a", b"a file where a folder would go"))
    with pytest.raises(BlobStorageError):
        run(disk.put("a/b.bin", b"x"))
    with pytest.raises(BlobNotFound):
        run(disk.get("a/b.bin"))
    assert not run(disk.exists("a/b.bin"))
    run(disk.delete("a/b.bin"))
    assert run(disk.get("a")) == b"a file where a folder would go"


def test_disk_check_fails_when_the_root_cannot_be_a_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    blob_store = open_blob_store(str(blocker / "blobs"))
    with pytest.raises(BlobStorageError):
        run(blob_store.check())
    with pytest.raises(BlobStorageError):
        run(blob_store.put("x.bin", b"x"))


def test_disk_check_creates_a_missing_root(tmp_path: Path) -> None:
    blob_store = open_blob_store(str(tmp_path / "deep" / "new" / "root"))
    run(blob_store.check())
    assert (tmp_path / "deep" / "new" / "root").is_dir()


def test_disk_does_not_presign(disk: DiskBlobStore) -> None:
    assert disk.presign_put("a/b.mp3", 600, "audio/mpeg") is None
    assert disk.presign_get("a/b.mp3", 600) is None


# --- S3 only -------------------------------------------------------------------------------------


def _raw_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def test_s3_objects_live_under_the_url_prefix(s3_env: str) -> None:  # noqa: F811
    bucket = create_bucket(s3_env)
    blob_store = open_blob_store(f"s3://{bucket}/tenant/blobs/")
    try:
        run(blob_store.put("accounts/1/a.mp3", b"a"))
        client = _raw_client(s3_env)
        listed = client.list_objects_v2(Bucket=bucket)["Contents"]
        assert [item["Key"] for item in listed] == ["tenant/blobs/accounts/1/a.mp3"]
        # Objects outside the prefix are not ours to list (or to garbage-collect).
        client.put_object(Bucket=bucket, Key="tenant/other.bin", Body=b"x")
        client.put_object(Bucket=bucket, Key="unrelated.bin", Body=b"x")
        client.close()
        assert run(blob_store.list_keys("")) == ["accounts/1/a.mp3"]
    finally:
        run(blob_store.close())


def test_s3_presigned_put_accepts_an_http_upload(s3_store: S3BlobStore, http: httpx.Client) -> None:
    url = s3_store.presign_put("accounts/3/uploads/u.mp3", 300)
    assert url is not None
    # Path-style addressing against the configured endpoint, so the URL's host is the server itself.
    assert url.startswith(f"{s3_store.endpoint_url}/{s3_store.bucket}/accounts/3/uploads/u.mp3?")
    response = http.put(url, content=b"ID3 uploaded audio")
    assert response.status_code == 200, response.text
    assert run(s3_store.get("accounts/3/uploads/u.mp3")) == b"ID3 uploaded audio"


def test_s3_presigned_put_with_content_type(s3_store: S3BlobStore, http: httpx.Client) -> None:
    url = s3_store.presign_put("typed.wav", 300, content_type="audio/wav")
    assert url is not None
    response = http.put(url, content=b"RIFF....WAVE", headers={"Content-Type": "audio/wav"})
    assert response.status_code == 200, response.text
    assert run(s3_store.get("typed.wav")) == b"RIFF....WAVE"


def test_s3_presigned_get_serves_the_blob(s3_store: S3BlobStore, http: httpx.Client) -> None:
    run(s3_store.put("accounts/3/play/p.wav", b"RIFF bytes to download"))
    url = s3_store.presign_get("accounts/3/play/p.wav", 300)
    assert url is not None
    response = http.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFF bytes to download"


def test_s3_check_fails_when_nothing_listens(s3_env: str, dead_port: int) -> None:  # noqa: F811
    blob_store = open_blob_store("s3://bucket/prefix", s3_endpoint_url=f"http://127.0.0.1:{dead_port}")
    try:
        with pytest.raises(BlobStorageError):
            run(blob_store.check())
        with pytest.raises(BlobStorageError):
            run(blob_store.get("a.mp3"))
    finally:
        run(blob_store.close())


def test_s3_check_fails_for_a_missing_bucket(s3_env: str) -> None:  # noqa: F811
    blob_store = open_blob_store("s3://no-such-bucket-for-vmsres")
    try:
        with pytest.raises(BlobStorageError):
            run(blob_store.check())
        with pytest.raises(BlobStorageError):
            run(blob_store.put("a.mp3", b"x"))
    finally:
        run(blob_store.close())


def test_s3_explicit_endpoint_wins_over_the_environment(
    new_bucket: str,  # noqa: F811
    s3_env: str,  # noqa: F811
    dead_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{dead_port}")
    blob_store = open_blob_store(f"s3://{new_bucket}", s3_endpoint_url=s3_env, s3_region="eu-west-1")
    try:
        run(blob_store.check())
        run(blob_store.put("x.bin", b"x"))
        assert run(blob_store.get("x.bin")) == b"x"
    finally:
        run(blob_store.close())


# --- open_blob_store ------------------------------------------------------------------------------


def test_open_blob_store_picks_the_backend(tmp_path: Path, s3_env: str) -> None:  # noqa: F811
    plain = open_blob_store(str(tmp_path / "plain"))
    assert isinstance(plain, DiskBlobStore) and plain.root == tmp_path / "plain"
    from_url = open_blob_store(f"file://{tmp_path}/with%20space")
    assert isinstance(from_url, DiskBlobStore) and from_url.root == tmp_path / "with space"
    s3 = open_blob_store("s3://my-bucket/a/b/")
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url, s3.region) == ("my-bucket", "a/b", s3_env, REGION)
    run(s3.close())


@pytest.mark.parametrize(
    "url",
    ["", "ftp://host/x", "file://remote-host/x", "file://", "s3://", "s3://bucket/a/../b", "s3://b/x?y=1"],
)
def test_open_blob_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_blob_store(url)
