"""Bounded memo tables: what a batch remembers between cases, within a fixed size.

A batch decides millions of cases over a few thousand distinct answers, so
the parts of a decision (criteria trees, evidence, texts) are worth keeping
between cases; but every such table must stay bounded, or a long batch's
memory grows with the number of its lines. A :class:`Memo` keeps at most
``size`` entries and forgets the least recently used one first. The tables
that remember what was read of a KB's syntax trees are shared by the threads
of a server: a lookup never fails because another thread forgot the entry.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, Optional, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """At most ``size`` entries (none when ``size`` is 0), least recently used forgotten first."""

    __slots__ = ("size", "data", "hits", "misses")

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> Optional[V]:
        value = self.data.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
            try:
                self.data.move_to_end(key)
            except KeyError:  # forgotten meanwhile by another thread: the value found is still right
                pass
        return value

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` (and return it)."""
        if self.size:
            self.data[key] = value
            while len(self.data) > self.size:
                try:
                    self.data.popitem(last=False)
                except KeyError:  # emptied meanwhile by another thread
                    break
        return value

    def __len__(self) -> int:
        return len(self.data)


class IdentityMemo(Memo[int, tuple]):
    """Values by an object's identity, for objects that cannot be hashed by value (or cost too much to).

    Each entry holds its object, so that the identity is not reused while
    the entry lives; a lookup checks that the object found is the one asked
    about.
    """

    __slots__ = ()

    def recall(self, obj: object) -> Optional[object]:
        hit = self.get(id(obj))
        return hit[1] if hit is not None and hit[0] is obj else None

    def keep(self, obj: object, value: V) -> V:
        self.put(id(obj), (obj, value))
        return value

    def of(self, obj: object, make: Callable[[], V]) -> V:
        """The value kept for ``obj``, made (by ``make()``, never None) and kept the first time."""
        hit = self.recall(obj)
        if hit is None:
            hit = self.keep(obj, make())
        return hit  # type: ignore[return-value]
