"""Running batch adjudication on a distributed engine: Dask bags of JSON lines.

Each partition is decided by an engine of its own, created once per worker
process from the KB that travels as package data (or from ``kb_path``, a
folder every worker can read). Records are exactly those of
``kineret-asp batch`` for the same lines: the line numbers count within each
input file, and the source named in error messages is the file.

    import dask.bag as db
    from kineret_asp.batch.distributed import dask_batch
    records = dask_batch(["part-0.jsonl", "part-1.jsonl"]).compute()

The same :func:`decide_partition` fits any engine that maps a function over
partitions (Spark's ``mapPartitions``, a multiprocessing pool, ...).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from ..cases.versions import Chooser
from .run import BatchWorker

_WORKERS: dict[tuple, BatchWorker] = {}


def _worker(kb_path: Optional[str], source: str) -> BatchWorker:
    key = (kb_path, source)
    worker = _WORKERS.get(key)
    if worker is None:
        if len(_WORKERS) > 32:
            _WORKERS.clear()
        worker = _WORKERS[key] = BatchWorker(Chooser.of(kb_path), source)
    return worker


def decide_partition(lines: Iterable[Any], kb_path: Optional[str] = None, source: str = "<partition>") -> list[str]:
    """Decide one partition of JSON lines; returns one JSON record per line, in order.

    A line may be ``str``, ``bytes``, or a ``(line, path)`` pair as
    ``dask.bag.read_text(..., include_path=True)`` gives, in which case the
    path names the source in error messages.
    """
    items = list(lines)
    if items and isinstance(items[0], tuple):
        source = str(items[0][1])
        items = [line for line, _ in items]
    raw = [(n, line.rstrip("\r\n").encode("utf-8") if isinstance(line, str) else line.rstrip(b"\r\n")) for n, line in enumerate(items, start=1)]
    return _worker(kb_path, source).json_lines(raw).splitlines()


def dask_batch(paths: Sequence[str], kb_path: Optional[str] = None) -> Any:
    """A Dask bag of decision records, one partition per input file."""
    import dask.bag as db

    bag = db.read_text(list(paths), files_per_partition=1, include_path=True)
    return bag.map_partitions(decide_partition, kb_path)
