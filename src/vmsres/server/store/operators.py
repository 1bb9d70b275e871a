"""Operators of the console and the admin API: name, role, token digest, enabled."""

from __future__ import annotations

import sqlalchemy as sa

from vmsres.server.store.database import Database, Executor, Row
from vmsres.server.store.schema import operators

_insert = operators.insert().values(
    name=sa.bindparam("name"),
    role=sa.bindparam("role"),
    token_sha256=sa.bindparam("token_sha256"),
    enabled=sa.true(),
    created_at=sa.bindparam("now"),
    updated_at=sa.bindparam("now"),
)
_all = sa.select(operators).order_by(operators.c.name)
_by_name = sa.select(operators).where(operators.c.name == sa.bindparam("name"))
_by_token = sa.select(operators).where(operators.c.token_sha256 == sa.bindparam("token_sha256"))
_enable = (
    operators.update()
    .where(operators.c.name == sa.bindparam("name"))
    .values(enabled=sa.true(), updated_at=sa.bindparam("now"))
)
# Disabling and a new token both end the sessions opened before: the generation grows.
_disable = (
    operators.update()
    .where(operators.c.name == sa.bindparam("name"))
    .values(enabled=sa.false(), generation=operators.c.generation + 1, updated_at=sa.bindparam("now"))
)
_set_token = (
    operators.update()
    .where(operators.c.name == sa.bindparam("name"))
    .values(
        token_sha256=sa.bindparam("token_sha256"),
        generation=operators.c.generation + 1,
        updated_at=sa.bindparam("now"),
    )
)
_delete = operators.delete().where(operators.c.name == sa.bindparam("name"))


class OperatorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, name: str, role: str, token_sha256: str, now: int, executor: Executor | None = None
    ) -> Row:
        """Raises UniqueViolation when the name is taken."""
        db = executor or self.db
        await db.execute(_insert, {"name": name, "role": role, "token_sha256": token_sha256, "now": now})
        row = await self.by_name(name, db)
        assert row is not None
        return row

    async def all(self) -> list[Row]:
        return await self.db.fetch_all(_all)

    async def by_name(self, name: str, executor: Executor | None = None) -> Row | None:
        return await (executor or self.db).fetch_one(_by_name, {"name": name})

    async def by_token(self, token_sha256: str) -> Row | None:
        return await self.db.fetch_one(_by_token, {"token_sha256": token_sha256})

    async def set_enabled(self, name: str, enabled: bool, now: int, executor: Executor | None = None) -> bool:
        return (
            await (executor or self.db).execute(_enable if enabled else _disable, {"name": name, "now": now})
            == 1
        )

    async def set_token(
        self, name: str, token_sha256: str, now: int, executor: Executor | None = None
    ) -> bool:
        return (
            await (executor or self.db).execute(
                _set_token, {"name": name, "token_sha256": token_sha256, "now": now}
            )
            == 1
        )

    async def delete(self, name: str, executor: Executor | None = None) -> bool:
        return await (executor or self.db).execute(_delete, {"name": name}) == 1
