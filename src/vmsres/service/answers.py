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

from collections import OrderedDict
from collections.abc import Hashable

Version = tuple[int, int]


class AnswerCache:
    """Serialized answers by key, least recently used dropped first past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Version, bytes]] = OrderedDict()
        self._size = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def get(self, key: Hashable, version: Version) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] != version:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, version: Version, answer: bytes) -> None:
        if len(answer) > self.max_bytes // 8:
            return
        self._drop(key)
        self._entries[key] = (version, answer)
        self._size += len(answer)
        while self._size > self.max_bytes and self._entries:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._size -= len(dropped)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._size -= len(entry[1])
