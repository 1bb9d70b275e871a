"""Webhook secrets at rest: sealed under the master key, still signing after restarts and rotation."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

import httpx

from tests.conftest import official_vms_service
from tests.servers import (
    RunningServer,
    insert_account,
    keyed_store,
    migrate_to,
    run_cli,
    run_sql,
    start_embedded_server,
)
from tests.webhook_receiver import FAST_WEBHOOKS, Receiver
from vmsres.server.masterkey import (
    Keyring,
    delivery_context,
    parse_keys,
    webhook_context,
)

TOKEN = "admin-test-token-4f9c2a7e1b"


def _server(data: Path, database_url: str | None) -> RunningServer:
    return start_embedded_server(data, database_url, serve_args=["--admin-token", TOKEN, *FAST_WEBHOOKS])


def _admin(server: RunningServer, method: str, path: str, **kwargs: object) -> dict[str, object]:
    response = httpx.request(
        method,
        f"{server.url}/admin/v1{path}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
        **kwargs,  # type: ignore[arg-type]
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _create_tts(server: RunningServer, name: str) -> str:
    vms = official_vms_service(server)
    return str(vms.create_tts({"Name": name, "TtsTemplateContent": "hello"})["Result"]["ResourceKey"])


def _stored_bytes(server: RunningServer) -> bytes:
    """What a thief of the database gets: the SQLite files, or every row of every PostgreSQL table."""
    if server.database_url is None:
        return b"".join(p.read_bytes() for p in server.data_dir.glob("vmsres.db*") if p.is_file())
    tables = [r[0] for r in server.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    return "\n".join(repr(server.sql(f'SELECT * FROM "{t}"')) for t in tables).encode()


def test_a_stolen_database_holds_no_webhook_secret(tmp_path: Path, database_url: str | None) -> None:
    chosen = f"whsec-{secrets.token_hex(12)}"
    receiver = Receiver(secret=chosen)
    server = _server(tmp_path / "data", database_url)
    try:
        _admin(server, "PUT", "/accounts/default/webhook", json={"Url": receiver.url, "Secret": chosen})
        _admin(server, "POST", "/accounts", json={"Name": "other"})
        generated = str(
            _admin(server, "PUT", "/accounts/other/webhook", json={"Url": receiver.url})["Secret"]
        )
        key = _create_tts(server, "sealed-hook")
        event = receiver.next_event()
        assert event.signature_ok and event.event["Data"]["ResourceKey"] == key
    finally:
        server.stop()
        receiver.close()
    raw = _stored_bytes(server)
    # The rows are there and readable: the receiver's URL and the event are in clear.
    assert receiver.url.encode() in raw and key.encode() in raw
    for secret in (chosen, generated):
        assert secret.encode() not in raw
    hooks = server.sql("SELECT secret FROM account_webhooks")
    deliveries = server.sql("SELECT secret FROM webhook_deliveries")
    assert len(hooks) == 2 and deliveries
    assert all(str(value).startswith("vmsk1:") for (value,) in [*hooks, *deliveries])


def test_webhooks_verify_after_a_restart_and_a_master_key_rotation(
    tmp_path: Path, database_url: str | None
) -> None:
    data = tmp_path / "data"
    receiver = Receiver(secret="whsec-rotation")
    server = _server(data, database_url)
    try:
        _admin(
            server, "PUT", "/accounts/default/webhook", json={"Url": receiver.url, "Secret": "whsec-rotation"}
        )
        _create_tts(server, "before-rotation")
        assert receiver.next_event().signature_ok
        # A delivery still pending when the key changes: its sealed copy must be re-encrypted.
        receiver.down = True
        pending_key = _create_tts(server, "pending-across-rotation")
        assert receiver.next() == "dropped"
    finally:
        server.stop()
    receiver.down = False

    new_key = tmp_path / "new.key"
    rotated = run_cli(
        "keys", "rotate-master-key", "--new-key-file", str(new_key), "--json", *server.store_args()
    )
    report = json.loads(rotated.stdout)
    assert report["WebhookSecrets"] == 1 + len(server.sql("SELECT id FROM webhook_deliveries"))
    new_ring = Keyring(parse_keys(new_key.read_text(), "new"))
    for account_id, stored in server.sql("SELECT account_id, secret FROM account_webhooks"):
        assert new_ring.decrypt(stored, webhook_context(account_id)) == "whsec-rotation"
    for event_id, stored in server.sql("SELECT event_id, secret FROM webhook_deliveries"):
        assert new_ring.decrypt(stored, delivery_context(event_id)) == "whsec-rotation"

    restarted = _server(data, database_url)
    try:
        late = receiver.next_event()
        assert late.signature_ok and late.event["Data"]["ResourceKey"] == pending_key
        fresh_key = _create_tts(restarted, "after-rotation")
        fresh = receiver.next_event()
        assert fresh.signature_ok and fresh.event["Data"]["ResourceKey"] == fresh_key
    finally:
        restarted.stop()
        receiver.close()


def test_migration_0008_seals_existing_webhook_secrets(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "data"
    ring, url = keyed_store(data, database_url)
    migrate_to(url, "0006_secrets", ring)
    receiver = Receiver(secret="plain-old-hook")
    event_id = uuid.uuid4().hex
    account_id = insert_account(url, "old")
    run_sql(
        url,
        "INSERT INTO account_webhooks (account_id, url, secret, updated_at) VALUES (:a, :u, 'plain-old-hook', 1)",
        {"a": account_id, "u": receiver.url},
    )
    payload = json.dumps({"EventId": event_id, "Type": "resource.created", "Account": "old", "Data": {}})
    run_sql(
        url,
        "INSERT INTO webhook_deliveries (event_id, event_type, account_name, url, secret, payload, state, "
        "attempts, next_attempt_ms, give_up_ms, created_at) VALUES (:e, 'resource.created', 'old', :u, "
        "'plain-old-hook', :p, 'pending', 0, 0, 9999999999999, 1)",
        {"e": event_id, "u": receiver.url, "p": payload},
    )
    # SQLite: no keyring handed over, so the migration must find DATA_DIR/master.key itself.
    migrate_to(url, "head", ring if database_url else None)
    [(hook,)] = run_sql(url, "SELECT secret FROM account_webhooks")
    [(copy,)] = run_sql(url, "SELECT secret FROM webhook_deliveries")
    assert "plain-old-hook" not in hook + copy
    assert ring.decrypt(hook, webhook_context(account_id)) == "plain-old-hook"
    assert ring.decrypt(copy, delivery_context(event_id)) == "plain-old-hook"

    # The delivery queued before the upgrade is sent, correctly signed, by an upgraded server.
    server = start_embedded_server(data, database_url, serve_args=FAST_WEBHOOKS)
    try:
        got = receiver.next_event()
        assert got.signature_ok and got.event["EventId"] == event_id
    finally:
        server.stop()
        receiver.close()

    migrate_to(url, "0006_secrets", ring, downgrade=True)
    assert run_sql(url, "SELECT secret FROM account_webhooks") == [("plain-old-hook",)]
