"""Failures of what the server depends on (database, Redis, disk), as the documented wire errors.

The store, the shared state and the blob store raise their own exceptions when a dependency is
out of reach or out of space; this is the one place that says which wire error each one is
(docs/reliability.md lists them). A lost database connection is run again once when nothing can
have been committed yet, so most terminated connections never reach the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from vmsres.protocol.errors import InsufficientStorage, ServiceUnavailable, VmsError
from vmsres.server.blobs import BlobStorageFull
from vmsres.server.shared_state import SharedStateUnavailable
from vmsres.server.store.database import DatabaseFull, DatabaseUnavailable, track_commits
from vmsres.server.store.database import compensated_writes as compensated_writes

_T = TypeVar("_T")
log = logging.getLogger("vmsres")
# What a 503 for an outage tells the client to wait before retrying.
RETRY_AFTER_SECONDS = 1

# The exceptions wire_error knows; other front ends (admin API, console) register handlers for them.
OUTAGES: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    DatabaseFull,
    BlobStorageFull,
    SharedStateUnavailable,
)


def wire_error(exc: BaseException) -> VmsError | None:
    """The wire error for a dependency failure, or None when ``exc`` is not one."""
    if isinstance(exc, DatabaseUnavailable):
        if exc.changes_unknown:
            return ServiceUnavailable(
                "The database connection was lost while the change was being committed; it may or "
                "may not have been made. Retry with the same ClientToken to be sure it is made once.",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        return ServiceUnavailable(
            "The database cannot be reached right now; retry later.", retry_after_seconds=RETRY_AFTER_SECONDS
        )
    if isinstance(exc, SharedStateUnavailable):
        return ServiceUnavailable(
            "The rate limiter's Redis cannot be reached right now; retry later.",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
    if isinstance(exc, DatabaseFull):
        return InsufficientStorage("The database's disk is full; the change was not made.")
    if isinstance(exc, BlobStorageFull):
        return InsufficientStorage("The blob storage is full; the change was not made.")
    return None


async def once_more_if_lost(work: Callable[[], Awaitable[_T]], what: str) -> _T:
    """Run ``work``; run it once more when the database connection was lost before anything could
    have been committed (a retry cannot then make anything twice).

    A second loss, or a loss after a COMMIT was sent, raises DatabaseUnavailable, with
    ``changes_unknown`` set when something may have been committed.
    """
    with track_commits() as commits:
        try:
            return await work()
        except DatabaseUnavailable as exc:
            if commits.may_have_committed:
                exc.changes_unknown = True
                raise
            log.warning("database connection lost in %s, running it again: %s", what, exc)
    with track_commits() as commits:
        try:
            return await work()
        except DatabaseUnavailable as exc:
            exc.changes_unknown = exc.changes_unknown or commits.may_have_committed
            raise
