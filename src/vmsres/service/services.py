"""Builds the service objects of one process over one database."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from vmsres.service.accounts import AccountService
from vmsres.service.resources import ResourceService
from vmsres.service.review import ReviewPolicy
from vmsres.shared import SharedState, open_shared
from vmsres.store import migrate
from vmsres.store.accounts import AccountStore
from vmsres.store.database import Database, open_database
from vmsres.store.resources import ResourceStore


@dataclass
class Services:
    db: Database
    accounts: AccountService
    resources: ResourceService
    shared: SharedState

    async def readiness(self) -> str | None:
        """None when the store answers and its schema is current; otherwise what is wrong."""
        try:
            await self.db.check()
            revision = await self.db.fetch_value(migrate.select_schema_revision)
        except Exception as exc:  # any failure here means "not ready", never a crash
            return f"store unreachable: {type(exc).__name__}"
        if revision != migrate.head_revision():
            return f"schema at {revision}, expected {migrate.head_revision()}"
        return None

    async def close(self) -> None:
        await self.shared.close()
        await self.db.close()


def open_services(
    database_url: str,
    review_policy: ReviewPolicy = "auto",
    *,
    run_migrations: bool = True,
    clock: Callable[[], float] = time.time,
    redis_url: str | None = None,
) -> Services:
    if run_migrations:
        migrate.upgrade(database_url)
    db = open_database(database_url)
    return Services(
        db=db,
        accounts=AccountService(AccountStore(db), clock=clock),
        resources=ResourceService(ResourceStore(db), review_policy, clock=clock),
        shared=open_shared(redis_url),
    )
