"""SecretKeys at rest: sealed under the master key, useless without it, rotatable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.servers import (
    TEST_SECRET_KEY,
    RunningServer,
    insert_account,
    migrate_to,
    run_cli,
    run_sql,
    start_server,
)
from tests.wire_client import error_code, signed_request
from vmsres.server.masterkey import (
    CHECK_CONTEXT,
    CHECK_SECRET_NAME,
    Keyring,
    access_key_context,
    generate_key_text,
    load_keyring,
    parse_keys,
)
from vmsres.server.service.shared_secrets import secret_context
from vmsres.server.settings import MASTER_KEY_ENV, database_url_for_dir
from vmsres.server.store import migrate


def _query(server: RunningServer, ak: str | None = None, sk: str | None = None) -> int:
    response = signed_request(
        server, "QueryOpenGetResource", {"Type": 1, "Limit": 1}, access_key=ak, secret_key=sk
    )
    return response.status_code


def _all_stored_text(server: RunningServer) -> str:
    """Every value of every table, as the thief of a database dump would see it."""
    if server.database_url is None:
        return ""
    tables = [r[0] for r in server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return "\n".join(repr(server.sql(f'SELECT * FROM "{t}"')) for t in tables)


def test_a_stolen_database_holds_no_secret_key(tmp_path: Path, database_url: str | None) -> None:
    server = start_server(tmp_path / "data", database_url=database_url)
    try:
        created = run_cli("keys", "create", "--account", "default", "--json", *server.store_args())
        secret = json.loads(created.stdout)["SecretKey"]
        access_key = json.loads(created.stdout)["AccessKey"]
        assert _query(server, access_key, secret) == 200
        assert _query(server) == 200
        run_cli("keys", "rotate", access_key, *server.store_args())
        # The old secret stops working at once although the server cached its plaintext.
        response = signed_request(
            server, "QueryOpenGetResource", {"Type": 1}, access_key=access_key, secret_key=secret
        )
        assert error_code(response) == "SignatureNotMatch"
        stored = server.sql("SELECT access_key, secret_key FROM access_keys")
        assert stored and all(row[1].startswith("vmsk1:") for row in stored)
        # An upload URL makes the deployment's URL-token key; it is sealed too.
        assert signed_request(server, "GetResourceUploadUrl", {"FileName": "a.wav"}).status_code == 200
        sealed = dict(server.sql("SELECT name, value FROM server_secrets"))
        assert all(value.startswith("vmsk1:") for value in sealed.values())
        keyring = load_keyring(str(tmp_path / "data"), None, create=False)
        token_key = keyring.decrypt(sealed["url_token_key"], secret_context("url_token_key"))
    finally:
        server.stop()
    if database_url is None:
        raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("vmsres.db*") if p.is_file())
        assert b"AKLTtestak" in raw  # the file is readable: the access key is there in clear
    else:
        raw = _all_stored_text(server).encode()
        assert b"AKLTtestak" in raw
    for secret_text in (TEST_SECRET_KEY, secret, token_key):
        assert secret_text.encode() not in raw


def test_the_embedded_master_key_file_is_private(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    server.stop()
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "master.key").st_mode)
    assert mode == 0o600


def test_a_server_with_the_wrong_master_key_refuses_to_start(
    tmp_path: Path, database_url: str | None
) -> None:
    data = tmp_path / "data"
    start_server(data, database_url=database_url).stop()
    with pytest.raises(RuntimeError, match="wrong master key for this database"):
        start_server(data, env={MASTER_KEY_ENV: generate_key_text()}, database_url=database_url)
    (data / "master.key").write_text(generate_key_text())
    with pytest.raises(RuntimeError, match="wrong master key"):
        start_server(data, database_url=database_url)
    store = ["--data-dir", str(data), *(["--database-url", database_url] if database_url else [])]
    listing = run_cli("keys", "list", *store, check=False)
    assert listing.returncode == 1 and "wrong master key" in listing.stderr


def test_rotate_master_key_re_encrypts_every_secret(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "data"
    server = start_server(data, database_url=database_url)
    created = run_cli("keys", "create", "--account", "default", "--json", *server.store_args())
    other = json.loads(created.stdout)
    upload = signed_request(server, "GetResourceUploadUrl", {"FileName": "before-rotation.wav"})
    upload_url = upload.json()["Result"]["UploadUrl"]
    server.stop()
    old_key = (data / "master.key").read_text()
    new_file = tmp_path / "new.key"
    rotated = run_cli("keys", "rotate-master-key", "--new-key-file", str(new_file), *server.store_args())
    assert "re-encrypted 2 secrets" in rotated.stdout, rotated.stdout
    assert stat.S_IMODE(os.stat(new_file).st_mode) == 0o600
    assert (data / "master.key").read_text() == new_file.read_text()
    new_ring = Keyring(parse_keys(new_file.read_text(), "new"))
    for access_key, stored in server.sql("SELECT access_key, secret_key FROM access_keys"):
        assert stored.split(":")[1] == new_ring.primary_id
        new_ring.decrypt(stored, access_key_context(access_key))
    for name, stored in server.sql("SELECT name, value FROM server_secrets"):
        assert stored.split(":")[1] == new_ring.primary_id
        new_ring.decrypt(stored, CHECK_CONTEXT if name == CHECK_SECRET_NAME else secret_context(name))

    restarted = start_server(data, database_url=database_url)
    try:
        assert _query(restarted) == 200
        assert _query(restarted, other["AccessKey"], other["SecretKey"]) == 200
        # The URL-token key kept its value through the rotation: a URL handed out before still works.
        assert httpx.put(upload_url.replace(server.url, restarted.url), content=b"RIFF").status_code == 200
    finally:
        restarted.stop()
    with pytest.raises(RuntimeError, match="wrong master key"):
        start_server(data, env={MASTER_KEY_ENV: old_key}, database_url=database_url)


def test_migration_0006_encrypts_existing_plaintext_secrets(tmp_path: Path) -> None:
    url = database_url_for_dir(tmp_path)
    migrate_to(url, "0004_scale", None)
    insert_account(url, "old")
    run_sql(
        url,
        "INSERT INTO access_keys (access_key, account_id, secret_key, enabled, created_at) "
        "SELECT 'AKLTold', id, 'plain-old-secret', true, 1 FROM accounts WHERE name = 'old'",
    )
    # No keyring handed over: the migration must find (and make) the embedded default file.
    migrate.upgrade(url)
    assert (tmp_path / "master.key").exists()
    ring = Keyring(parse_keys((tmp_path / "master.key").read_text(), "default"))
    [(stored,)] = run_sql(url, "SELECT secret_key FROM access_keys WHERE access_key = 'AKLTold'")
    assert "plain-old-secret" not in stored
    assert ring.decrypt(stored, access_key_context("AKLTold")) == "plain-old-secret"
    # A ciphertext moved onto another key's row is refused: the access key is bound in.
    with pytest.raises(Exception, match="integrity"):
        ring.decrypt(stored, access_key_context("AKLTother"))
