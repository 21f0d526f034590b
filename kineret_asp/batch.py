"""Batch adjudication: JSON lines in, one decision (or error) record per line out.

Every input line gives exactly one output record, in input order, carrying
the line number and the case id::

    {"line": 7, "id": "c7", "policy": "IP0243", ..., "decision": "approved", ...}
    {"line": 8, "id": null, "error": "in.jsonl:8: medication_history[0].drug: unknown ...", "errors": [...]}

An error record holds the same one-line messages ``evaluate`` prints: the
first as ``error``, every one found in the case (up to a cap) in ``errors``. Lines
are read and decided in fixed-size chunks (one clingo grounding per chunk,
:class:`~kineret_asp.engine.ChunkEngine`), so memory stays flat however long
the input. Decisions are cached by the case's input atoms: two cases with
the same facts get the same decision, so a repeated pattern is not solved
again (exact, and bounded in size).

Output to a file is written a chunk of complete lines at a time; ``resume``
drops a half-written last line, counts the complete records and skips that
many input lines.
"""
from __future__ import annotations

import json
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Optional, Sequence, Union

from .case import Case, parse_case, parse_json_text
from .decision import Decision, build_decision
from .engine import CaseFailure, ChunkEngine, Output
from .errors import CaseError
from .knowledge import KnowledgeBase, load_kb, resolve_kb

MAX_LINE_BYTES = 8 * 1024 * 1024
DEFAULT_CHUNK = 1000
CACHE_ENTRIES = 20_000


@dataclass(frozen=True)
class BatchRecord:
    """The outcome for one input line: a decision, or an error message."""

    line: int
    id: Optional[str]
    decision: Optional[Decision] = None
    error: Optional[str] = None
    errors: tuple[str, ...] = ()  # every problem found, one line each (``error`` is the first)

    def to_dict(self) -> dict:
        if self.decision is not None:
            return {"line": self.line, **self.decision.to_dict()}
        return {"line": self.line, "id": self.id, "error": self.error, "errors": list(self.errors or (self.error,))}


class _Cache:
    """Decisions (as JSON text after the id) keyed by a case's input atoms."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict[tuple, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> Optional[str]:
        if not self.size:
            return None
        value = self.data.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
            self.data.move_to_end(key)
        return value

    def put(self, key: tuple, value: str) -> None:
        if not self.size:
            return
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)


def _id_of(raw: Any) -> Optional[str]:
    """The id of a rejected case, when it is a usable one (for the error record)."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and len(raw["id"]) <= 1000:
        try:
            raw["id"].encode("utf-8")
        except UnicodeEncodeError:
            return None
        return raw["id"]
    return None


class BatchWorker:
    """Decides chunks of raw lines; one per process, with its own engine and cache."""

    def __init__(self, kb: KnowledgeBase, source: str, time_limit: Optional[float] = 10.0, cache: int = CACHE_ENTRIES):
        self.kb = kb
        self.source = source
        self.engine = ChunkEngine(kb, time_limit=time_limit)
        self.cache = _Cache(cache)
        self.dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

    def parse(self, number: int, raw: Union[bytes, str, dict, Case, None]) -> Union[Case, BatchRecord]:
        where = f"{self.source}:{number}"
        if raw is None:
            return BatchRecord(number, None, error=f"{where}: line longer than {MAX_LINE_BYTES} bytes: expected one JSON case per line")
        if isinstance(raw, Case):
            return raw
        data: Any = raw
        try:
            if isinstance(raw, (bytes, str)):
                data = parse_json_text(raw, where)
            return parse_case(data, where, self.kb)
        except CaseError as exc:
            return BatchRecord(number, _id_of(data), error=exc.line(), errors=tuple(exc.lines()))

    def _decided(self, cases: Sequence[tuple[int, Case, tuple]]) -> Iterator[tuple[tuple, list[tuple[int, Case]], "Output | CaseFailure"]]:
        """Each group of cases with the same facts, with the engine's answer: one solve per group."""
        groups: dict[tuple, list[tuple[int, Case]]] = {}
        for n, case, key in cases:
            groups.setdefault(key, []).append((n, case))
        keys = list(groups)
        outputs = self.engine.run([list(key) for key in keys]) if keys else []
        for key, out in zip(keys, outputs):
            yield key, groups[key], out

    @staticmethod
    def _failure(case: Case, out: CaseFailure) -> str:
        return f"{case.source}: {out.message}"

    def records(self, lines: Sequence[tuple[int, Any]]) -> list[BatchRecord]:
        """Decide a chunk; Decision objects included (for the Python API)."""
        parsed = [(n, self.parse(n, raw)) for n, raw in lines]
        done: dict[int, BatchRecord] = {}
        for _, group, out in self._decided([(n, c, tuple(c.atoms())) for n, c in parsed if isinstance(c, Case)]):
            for n, case in group:
                if isinstance(out, CaseFailure):
                    done[n] = BatchRecord(n, case.id, error=self._failure(case, out))
                else:
                    done[n] = BatchRecord(n, case.id, decision=build_decision(case, out, self.kb))
        return [done[n] if isinstance(c, Case) else c for n, c in parsed]

    def json_lines(self, lines: Sequence[tuple[int, Any]]) -> str:
        """Decide a chunk straight to output text; cached decisions skip the solver."""
        parsed = [(n, self.parse(n, raw)) for n, raw in lines]
        texts: dict[int, str] = {}
        misses: list[tuple[int, Case, tuple]] = []
        for n, c in parsed:
            if isinstance(c, BatchRecord):
                texts[n] = self.dumps(c.to_dict())
                continue
            key = tuple(c.atoms())
            rest = self.cache.get(key)
            if rest is not None:
                texts[n] = f'{{"line": {n}, "id": {self.dumps(c.id)}, {rest}'
            else:
                misses.append((n, c, key))
        for key, group, out in self._decided(misses):
            self.cache.hits += len(group) - 1  # the same facts again in this chunk: decided once
            if isinstance(out, CaseFailure):
                for n, case in group:
                    message = self._failure(case, out)
                    texts[n] = self.dumps({"line": n, "id": case.id, "error": message, "errors": [message]})
                continue
            decision = build_decision(group[0][1], out, self.kb).to_dict()
            decision.pop("id")
            rest = self.dumps(decision)[1:]
            self.cache.put(key, rest)
            for n, case in group:
                texts[n] = f'{{"line": {n}, "id": {self.dumps(case.id)}, {rest}'
        return "".join(texts[n] + "\n" for n, _ in parsed)


def read_lines(stream: IO[bytes], start: int = 0) -> Iterator[tuple[int, Optional[bytes]]]:
    """(line number, bytes) for each line; None for a line over the size limit.

    Memory is bounded by the limit: an overlong line is skipped in pieces.
    Lines before ``start`` are skipped without being kept.
    """
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        too_long = len(line) > MAX_LINE_BYTES and not line.endswith(b"\n")
        while too_long:
            rest = stream.readline(MAX_LINE_BYTES)
            if not rest or rest.endswith(b"\n"):
                break
        if number <= start:
            continue
        if too_long:
            yield number, None
        else:
            yield number, line.rstrip(b"\r\n")


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- worker processes -------------------------------------------------------

_WORKER: Optional[BatchWorker] = None


def _init_worker(kb_path: str, source: str, time_limit: Optional[float], cache: int) -> None:
    global _WORKER
    _WORKER = BatchWorker(load_kb(kb_path), source, time_limit, cache)


def _work(lines: list[tuple[int, Optional[bytes]]]) -> str:
    assert _WORKER is not None
    return _WORKER.json_lines(lines)


def _ordered(pool: Any, func: Callable, work: Iterable[Any], window: int) -> Iterator[Any]:
    """Results of func over work, in order, with at most ``window`` tasks in flight."""
    pending: list[Any] = []
    for item in work:
        pending.append(pool.apply_async(func, (item,)))
        if len(pending) >= window:
            yield pending.pop(0).get()
    while pending:
        yield pending.pop(0).get()


def resume_point(path: Path) -> int:
    """Complete records already in an output file; a partial last line is cut off."""
    if not path.exists():
        return 0
    count = 0
    good = 0
    with open(path, "rb+") as f:
        while True:
            line = f.readline()
            if not line:
                break
            if not line.endswith(b"\n"):
                break
            try:
                json.loads(line)
            except ValueError:
                break
            count += 1
            good = f.tell()
        f.truncate(good)
    return count


class Progress:
    """A one-line progress report on stderr for long runs."""

    def __init__(self, enabled: bool, stream: IO[str] = sys.stderr):
        self.enabled = enabled
        self.stream = stream
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self.last >= 0.5:
            self.last = now
            rate = done / max(now - self.start, 1e-9)
            self.stream.write(f"\rkineret-asp batch: {done} cases, {rate:,.0f} cases/s")
            self.stream.flush()

    def close(self, done: int) -> None:
        if self.enabled:
            self.update(done, force=True)
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class BatchSummary:
    records: int
    errors: int
    skipped: int
    seconds: float


def run_batch(
    source: IO[bytes],
    sink: IO[bytes],
    kb: KnowledgeBase,
    source_name: str,
    jobs: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    start: int = 0,
    time_limit: Optional[float] = 10.0,
    cache: int = CACHE_ENTRIES,
    progress: Optional[Progress] = None,
) -> BatchSummary:
    """Decide every line of ``source`` and write one record per line to ``sink``."""
    began = time.perf_counter()
    progress = progress or Progress(False)
    work = chunks(read_lines(source, start), chunk_size)
    done = errors = 0
    if jobs <= 1:
        worker = BatchWorker(kb, source_name, time_limit, cache)
        results: Iterable[str] = (worker.json_lines(c) for c in work)
        pool = None
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
        pool = context.Pool(jobs, initializer=_init_worker, initargs=(str(kb.path), source_name, time_limit, cache))
        results = _ordered(pool, _work, work, window=2 * jobs)
    try:
        for text in results:
            data = text.encode("utf-8")
            sink.write(data)
            sink.flush()
            n = text.count("\n")
            done += n
            errors += text.count('"error": ')
            progress.update(done)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    progress.close(done)
    return BatchSummary(done, errors, start, time.perf_counter() - began)


def batch_evaluate(
    cases: Iterable[Union[str, bytes, dict, Case]],
    kb: Any = None,
    chunk_size: int = DEFAULT_CHUNK,
    source: str = "<batch>",
    time_limit: Optional[float] = 10.0,
) -> Iterator[BatchRecord]:
    """Decide many cases lazily, in order, one record per input (never raises for a bad case).

    Inputs are JSON lines (str or bytes), dicts or Case objects; a bad one
    gives a record with ``error`` set, like a bad line in ``kineret-asp batch``.
    """
    knowledge = resolve_kb(kb)
    worker = BatchWorker(knowledge, source, time_limit, cache=0)
    numbered = ((n, c) for n, c in enumerate(cases, start=1))
    for chunk in chunks(numbered, chunk_size):
        yield from worker.records(chunk)
