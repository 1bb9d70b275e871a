"""A least-recently-used cache whose entries are valid only for the version they were made at.

The per-worker caches of vmsres (keyword match lists, listing answers) keep what a query
returned together with generation numbers that database triggers change with every relevant
write; an entry read with any other version is dropped, so a cache can never answer stale.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class VersionedCache(Generic[V]):
    """At most ``budget`` in total of ``size(value)``; the least recently used go first."""

    def __init__(self, budget: int, size: Callable[[V], int]) -> None:
        self.budget = budget
        self._size_of = size
        self._entries: OrderedDict[Hashable, tuple[Hashable, V]] = OrderedDict()
        self._size = 0

    def get(self, key: Hashable, version: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] != version:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, version: Hashable, value: V) -> None:
        self._drop(key)
        self._entries[key] = (version, value)
        self._size += self._size_of(value)
        while self._size > self.budget and self._entries:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._size -= self._size_of(dropped)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._size -= self._size_of(entry[1])
