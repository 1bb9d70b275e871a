"""Secrets at rest: SecretKeys are stored AES-256-GCM encrypted under a master key.

The master key never touches the database. It comes from ``VMSRES_MASTER_KEY`` or a key file
(``--master-key-file``, default ``DATA_DIR/master.key``, created 0600 on first use). A key file
may hold several keys, one per line: the first encrypts, all of them decrypt, so servers can be
handed the new key before ``vmsres keys rotate-master-key`` switches the rows over.

A stored value reads ``vmsk1:<key id>:<base64url(nonce | ciphertext | tag)>``. The key id is a
hash of the key, so a server given the wrong key can name the key it is missing instead of
failing to verify every request. The access key is the associated data: a ciphertext copied
onto another key's row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vmsres.server.settings import MASTER_KEY_ENV

MASTER_KEY_FILE_NAME = "master.key"
PREFIX = "vmsk1"
# A known plaintext in server_secrets: proves at startup that the key fits this database, even
# before any access key exists.
CHECK_SECRET_NAME = "master_key_check"
CHECK_CONTEXT = "vmsres:master-key-check"
CHECK_PLAINTEXT = "vmsres master key check"
_NONCE_BYTES = 12


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one this database's secrets need."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"vmsres-master-key-id\x00" + key).hexdigest()[:16]


def generate_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=") + "\n"


def parse_keys(text: str, source: str) -> list[bytes]:
    keys: list[bytes] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.urlsafe_b64decode(line + "=" * (-len(line) % 4))
        except (binascii.Error, ValueError):
            raise MasterKeyError(f"{source}: a master key is 32 bytes in base64url") from None
        if len(key) != 32:
            raise MasterKeyError(f"{source}: a master key is 32 bytes in base64url, not {len(key)}")
        keys.append(key)
    if not keys:
        raise MasterKeyError(f"{source}: holds no master key")
    return keys


class Keyring:
    def __init__(self, keys: Sequence[bytes], source: str = "master key") -> None:
        if not keys:
            raise MasterKeyError("a keyring needs at least one key")
        self.source = source
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self.primary_id = key_id(keys[0])
        self._primary = self._keys[self.primary_id]

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def encrypt(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._primary.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}:{self.primary_id}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def decrypt(self, stored: str, context: str) -> str:
        kid = stored_key_id(stored)
        if kid is None:
            raise MasterKeyError("the stored secret is not encrypted (run the 0006_secrets migration)")
        cipher = self._keys.get(kid)
        if cipher is None:
            raise MasterKeyError(
                f"a secret is encrypted with master key id {kid}, but {self.source} only holds "
                f"{', '.join(self._keys)}"
            )
        payload = stored.split(":", 2)[2]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        try:
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except InvalidTag:
            raise MasterKeyError(f"a secret under master key id {kid} fails its integrity check") from None


def stored_key_id(stored: str) -> str | None:
    """The key id of an encrypted value, or None for a plaintext one."""
    parts = stored.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None


def access_key_context(access_key: str) -> str:
    return f"vmsres:access-key:{access_key}"


def webhook_context(account_id: int) -> str:
    """An account's webhook secret is bound to the account: moved onto another row it fails."""
    return f"vmsres:webhook:{account_id}"


def delivery_context(event_id: str) -> str:
    """Each queued delivery carries its own sealed copy of the secret, bound to its event."""
    return f"vmsres:webhook-delivery:{event_id}"


def unseal(keyring: Keyring, stored: str, context: str) -> str:
    """The plaintext of a sealed value; a plaintext one is returned as it is.

    Only values an older vmsres wrote before a migration sealed them (a rolling upgrade) are
    plaintext; refusing them would stop that process's webhooks for nothing a thief could use.
    """
    return keyring.decrypt(stored, context) if stored_key_id(stored) is not None else stored


def write_key_file(path: Path, text: str, *, replace: bool = False) -> None:
    """Write a key file readable by its owner only, durably; ``replace`` swaps it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(path.name + f".tmp-{secrets.token_hex(4)}") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(target, path)
    except BaseException:
        if replace:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
        raise


def default_key_file(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / MASTER_KEY_FILE_NAME


def load_keyring(data_dir: str | os.PathLike[str], key_file: str | None, *, create: bool) -> Keyring:
    """The master key from the environment, the named file, or the embedded default file.

    Only the default file is created when missing: a named file that is absent is a mistake
    (a typo would otherwise silently start a second, unrelated key).
    """
    from_env = os.environ.get(MASTER_KEY_ENV)
    if from_env:
        return Keyring(parse_keys(from_env, MASTER_KEY_ENV), MASTER_KEY_ENV)
    path = Path(key_file) if key_file else default_key_file(data_dir)
    if not path.exists():
        if key_file or not create:
            raise MasterKeyError(f"no master key file at {path} (and {MASTER_KEY_ENV} is not set)")
        # O_EXCL: of two processes starting together exactly one creates it.
        with contextlib.suppress(FileExistsError):
            write_key_file(path, generate_key_text())
    try:
        text = path.read_text()
    except OSError as exc:
        raise MasterKeyError(f"cannot read the master key file {path}: {exc.strerror}") from None
    return Keyring(parse_keys(text, str(path)), str(path))
