"""Per-worker cache of whole listing answers, valid while the account's generations stand.

QueryOpenGetResource and QueryUsableResource are asked the same questions again and again (a
dialer polling its usable resources, a console on the first page). Their answers change only
when the account's resources or leases change, and both are numbered by triggers inside the
writing transaction (resource_generations), so an answer kept with the numbers it was read at
is exact for as long as the numbers stand: every worker of every server sees a write at once.

One thing changes without a write: a lease running out turns InUse from true to false. Answers
that show a resource in use are therefore never kept.
"""

from __future__ import annotations

from collections.abc import Hashable

from vmsres.server.versioned_cache import VersionedCache

Version = tuple[int, int]


class AnswerCache(VersionedCache[bytes]):
    """Serialized answers by key and account version, at most ``max_bytes`` in all."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, len)

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def put(self, key: Hashable, version: Hashable, value: bytes) -> None:
        if len(value) <= self.budget // 8:  # one huge answer must not push out all the others
            super().put(key, version, value)
