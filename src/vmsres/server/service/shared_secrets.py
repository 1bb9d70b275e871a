"""Deployment-wide secrets (URL-token key, console session secret, ...), sealed at rest.

Every server process of a deployment must agree on them, so they live in the database; like the
SecretKeys they are stored encrypted under the master key, so a stolen database file alone
cannot forge an upload, download or console URL.
"""

from __future__ import annotations

import secrets

from vmsres.server.masterkey import Keyring, stored_key_id
from vmsres.server.store.uploads import UploadStore


def secret_context(name: str) -> str:
    """The associated data of a sealed server secret: a value moved to another name fails."""
    return f"vmsres:server-secret:{name}"


class SharedSecrets:
    def __init__(self, store: UploadStore, keyring: Keyring) -> None:
        self.store = store
        self.keyring = keyring

    async def get(self, name: str, nbytes: int = 32) -> str:
        """The value of ``name``; the first process to ask makes it (``nbytes`` random bytes, hex)."""
        context = secret_context(name)
        candidate = self.keyring.encrypt(secrets.token_hex(nbytes), context)
        stored = await self.store.shared_secret(name, candidate)
        # A value written before secrets were sealed is still honoured as it is.
        return self.keyring.decrypt(stored, context) if stored_key_id(stored) else stored
