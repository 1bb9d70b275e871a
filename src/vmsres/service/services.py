"""Builds the service objects of one process over one database."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from vmsres.service.accounts import AccountService
from vmsres.service.events import DEFAULT_MAX_AGE_SECONDS, EventService
from vmsres.service.resources import ResourceService
from vmsres.service.review import ReviewPolicy, ReviewRules
from vmsres.store import migrate
from vmsres.store.accounts import AccountStore
from vmsres.store.database import Database, open_database
from vmsres.store.events import EventStore
from vmsres.store.resources import ResourceStore


@dataclass
class Services:
    db: Database
    accounts: AccountService
    resources: ResourceService
    events: EventService
    event_store: EventStore
    clock: Callable[[], float] = time.time

    def now(self) -> int:
        return int(self.clock())

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
        await self.db.close()


def open_services(
    database_url: str,
    review_policy: ReviewPolicy = "auto",
    *,
    run_migrations: bool = True,
    clock: Callable[[], float] = time.time,
    rules: ReviewRules | None = None,
    webhook_max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
) -> Services:
    if run_migrations:
        migrate.upgrade(database_url)
    db = open_database(database_url)
    event_store = EventStore(db)
    events = EventService(event_store, clock=clock, max_age_seconds=webhook_max_age_seconds)
    return Services(
        db=db,
        accounts=AccountService(AccountStore(db), clock=clock),
        resources=ResourceService(ResourceStore(db), review_policy, clock=clock, rules=rules, events=events),
        events=events,
        event_store=event_store,
        clock=clock,
    )
