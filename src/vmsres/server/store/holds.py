"""Backup holds, as the server sees them: is a backup copying blobs right now?"""

from __future__ import annotations

import sqlalchemy as sa

from vmsres.server.store.database import Database
from vmsres.server.store.schema import backup_holds

_live = sa.select(backup_holds.c.id).where(backup_holds.c.expires_at > sa.bindparam("now")).limit(1)


class HoldStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def held(self, now: int) -> bool:
        return await self.db.fetch_value(_live, {"now": now}) is not None
