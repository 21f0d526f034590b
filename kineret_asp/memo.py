"""Bounded memo tables: what a batch remembers between cases, within a fixed size.

A batch decides millions of cases over a few thousand distinct answers, so
the parts of a decision (criteria trees, evidence, texts) are worth keeping
between cases; but every such table must stay bounded, or a long batch's
memory grows with the number of its lines. A :class:`Memo` keeps at most
``size`` entries and forgets the least recently used one first.
:func:`frozen_heap` sets the collector up for the time of many cases'
work (every many-case path uses it). The tables
that remember what was read of a KB's syntax trees are shared by the threads
of a server: a lookup never fails because another thread forgot the entry.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Generic, Hashable, Iterator, Optional, TypeVar

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


class Table(dict):
    """At most ``size`` entries (none when ``size`` is 0), the oldest forgotten first; a lookup is a dict's.

    For a table a batch looks up several times a case whose working set
    fits in it (the few hundred shapes of answer, the texts of a few
    thousand pieces of evidence): a hit costs no bookkeeping, where a
    :class:`Memo` moves its entry to the end. One thread's table: it is
    not shared between threads.
    """

    __slots__ = ("size",)

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key: Hashable, value: V) -> V:
        """Remember ``value`` (and return it)."""
        if self.size:
            self[key] = value
            if len(self) > self.size:
                del self[next(iter(self))]
        return value


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


BATCH_GC_THRESHOLD = (100_000, 20, 20)
"""The collector's thresholds during a batch: a young generation of 100,000 objects instead of 700.

Each case makes and drops thousands of short-lived objects with no cycles;
collecting every 700 allocations walked them again and again. Measured in
CPU seconds on 20,000 cases: 15-20 % more cases a second with 20,000; with
100,000 the collector's share of a batch fell from about 3 % to 1.3 % (three
young collections in 20,000 cases of realistic histories, instead of 27)."""


def batch_collector() -> tuple:
    """Set the collector up for a batch and return the settings to restore.

    The objects that exist now (the loaded KB, its programs and engines)
    are left out of garbage collection (``gc.freeze``): the KB's syntax
    trees are most of the live objects and never die, and the collector
    walked them at every full collection (about a tenth of a batch's time).
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*BATCH_GC_THRESHOLD)
    return before


_heap_lock = threading.Lock()
_heap_users = 0
_heap_before: tuple = ()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """:func:`batch_collector` for the time of a batch (or a chunk of one); the collector as it was afterwards.

    Nested and concurrent uses (the Python API called from several threads,
    a batch inside another's chunk) share one setting: the first to enter
    sets the collector up, the last to leave gives it back.
    """
    global _heap_users, _heap_before
    with _heap_lock:
        if _heap_users == 0:
            _heap_before = batch_collector()
        _heap_users += 1
    try:
        yield
    finally:
        with _heap_lock:
            _heap_users -= 1
            if _heap_users == 0:
                gc.set_threshold(*_heap_before)
                gc.unfreeze()
