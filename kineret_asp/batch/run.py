"""Batch adjudication: JSON lines in, one decision (or error) record per line out.

Every input line gives exactly one output record, in input order, carrying
the line number and the case id::

    {"line": 7, "id": "c7", "policy": "IP0243", ..., "decision": "approved", ...}
    {"line": 8, "id": null, "error": "in.jsonl:8: medication_history[0].drug: unknown ...", "errors": [...]}

An error record holds the same one-line messages ``evaluate`` prints: the
first as ``error``, every one found in the case (up to a cap) in ``errors``. Lines
are read and decided in fixed-size chunks (one clingo grounding per chunk,
:class:`~kineret_asp.engine.chunked.chunked.ChunkEngine`), so memory stays flat however long
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
from collections import deque
from dataclasses import dataclass
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

from ..cases.caps import MAX_LINE_BYTES
from ..cases.case import Case
from ..cases.files import parse_json_text
from ..cases.load import Loaded, load
from ..cases.versions import Choice, Chooser
from ..decisions.decision import Decision, DecisionEncoder, builder, with_input_notes
from ..decisions.record_texts import RecordTexts
from ..engine.chunked import CaseFailure, ChunkEngine, Output
from ..errors import CaseError, KbError, KineretError
from ..knowledge.base import KnowledgeBase
from ..limits import DEFAULT_MEMORY_MB, EXIT_LIMIT, START_ALLOWANCE, Limits, Outcome, Worker
from ..memo import BATCH_GC_THRESHOLD, Memo, batch_collector, frozen_heap  # noqa: F401 - the collector's settings, kept importable here
from ..safetext import safe_json

DEFAULT_CHUNK = 1000
CHUNK_BYTES = 2 * 1024 * 1024
"""A chunk closes at this many bytes of input even when it has fewer than ``chunk_size`` lines."""
CACHE_ENTRIES = 1_000
"""Decisions the cache keeps, by a case's facts: kept small because each entry is a decision's text (2 KB
on realistic histories; a batch's memory must not grow with its length). A batch that repeats cases
hits it; on realistic histories about one case in a hundred does, and 5,000 entries made a batch
about 5 % slower than 1,000 or none (the texts' memory), measured on 10,000 cases."""
MAX_CACHED_ATOMS = 200
"""A case with more input atoms than this is not kept in the decision cache (its key alone would be big)."""
CHUNK_ALLOWANCE = 1.0
CASE_ALLOWANCE = 0.005
"""A chunk's deadline: the per-case time limit, plus CHUNK_ALLOWANCE, plus CASE_ALLOWANCE for every case in it."""
CASE_ALLOWANCE_ALONE = 1.0
"""A case decided on its own may take the time limit plus this (a fresh grounding)."""


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


class _Facts:
    """What a decision depends on: the version, how it was chosen (the provenance says), a Bundle's notes, the case's facts.

    Hashed once: a chunk looks each case's key up three times (the cache,
    its group, the cache again), and the facts are a dozen tuples.
    """

    __slots__ = ("key", "atoms", "hash")

    def __init__(self, loaded: Loaded, atoms: Sequence[tuple]):
        self.key = (str(loaded.choice.kb.path), loaded.choice.route, loaded.notes, tuple(atoms))
        self.atoms = len(atoms)
        self.hash = hash(self.key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return self is other or (type(other) is _Facts and self.hash == other.hash and self.key == other.key)


class _Cache(Memo[_Facts, str]):
    """Decisions (as JSON text after the id) keyed by a case's input atoms; a case with many atoms is not kept."""

    def get(self, key: _Facts) -> Optional[str]:  # type: ignore[override]
        return None if not self.size or key.atoms > MAX_CACHED_ATOMS else super().get(key)

    def put(self, key: _Facts, value: str) -> str:  # type: ignore[override]
        return value if key.atoms > MAX_CACHED_ATOMS else super().put(key, value)


class _Group:
    """The cases of a chunk with the same version, facts and notes: decided once (the first case's answer is every one's)."""

    __slots__ = ("key", "loaded", "atoms", "members")

    def __init__(self, key: "_Facts", loaded: Loaded, atoms: Sequence[tuple]):
        self.key = key
        self.loaded = loaded
        self.atoms = atoms
        self.members: list[tuple[int, Case]] = []


def id_text(value: Optional[str]) -> str:
    """A case id as JSON text: the bytes of the batch's encoder for a string or None, without its dispatch (once a case)."""
    return "null" if value is None else safe_json(encode_basestring(value))


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
    """Decides chunks of raw lines; one per process, with its own engines and cache.

    Each line is decided by the version chosen for it (its date of service
    in a KB tree, see :mod:`kineret_asp.cases.versions`); the cases of a chunk are
    grouped by version, one grounding per version and chunk.
    """

    def __init__(self, kb: Any, source: str, time_limit: Optional[float] = 10.0, cache: int = CACHE_ENTRIES, log: Any = None, served: bool = False):
        self.chooser = kb if isinstance(kb, Chooser) else Chooser.of(kb)
        self.source = source
        self.log = log  # a decision log (or its URL): every decided line recorded, a chunk in one transaction
        self.time_limit = time_limit
        self.engines: dict[int, ChunkEngine] = {}
        self.cache = _Cache(cache)
        encode = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
        self.dumps: Callable[[Any], str] = lambda data: safe_json(encode(data))
        self.encoder = DecisionEncoder(self.dumps, served=served)  # served: records as the HTTP service gives them (the KB named by its folder's name)
        self.texts = RecordTexts(self.encoder)  # decision texts by shape of answer: no solving saved, only building (always on)

    @property
    def kb(self) -> KnowledgeBase:
        """The version a case that says nothing is decided by."""
        return self.chooser.default()

    def engine(self, kb: KnowledgeBase) -> ChunkEngine:
        engine = self.engines.get(id(kb))
        if engine is None:
            engine = self.engines[id(kb)] = ChunkEngine(kb, time_limit=self.time_limit)
        return engine

    def parse(self, number: int, raw: Union[bytes, str, dict, Case, None]) -> Union[Loaded, BatchRecord]:
        """A line (JSON text: a case or a FHIR Bundle), a dict or a Case, read by the one loader; an error record otherwise."""
        where = f"{self.source}:{number}"
        if raw is None:
            return BatchRecord(number, None, error=f"{where}: line longer than {MAX_LINE_BYTES} bytes: expected one JSON case per line")
        data: Any = raw
        try:
            if isinstance(raw, (bytes, str)):
                data = parse_json_text(raw, where)
            return load(data, self.chooser, shown=where)
        except CaseError as exc:
            return BatchRecord(number, _id_of(data), error=exc.line(), errors=tuple(exc.lines()))

    def _group(self, groups: dict[_Facts, "_Group"], n: int, loaded: Loaded) -> Optional[str]:
        """Put a case in the group of its version and facts (cases with the same facts are solved once); its decision's text when the cache has it."""
        atoms = loaded.case.atoms()
        key = _Facts(loaded, atoms)
        rest = self.cache.get(key)
        if rest is None:
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(key, loaded, atoms)
            group.members.append((n, loaded.case))
        return rest

    def _decided(self, groups: Iterable["_Group"]) -> Iterator[tuple["_Group", "Output | CaseFailure"]]:
        """Each group with the engine's answer: one solve per group, one engine run per version."""
        by_version: dict[int, list[_Group]] = {}
        for group in groups:
            by_version.setdefault(id(group.loaded.choice.kb), []).append(group)
        for members in by_version.values():
            yield from zip(members, self.engine(members[0].loaded.choice.kb).run([g.atoms for g in members]))

    @staticmethod
    def _failure(case: Case, out: CaseFailure) -> str:
        return f"{case.source}: {out.message}"

    def records(self, lines: Sequence[tuple[int, Any]]) -> list[BatchRecord]:
        """Decide a chunk; Decision objects included (for the Python API)."""
        parsed = [(n, self.parse(n, raw)) for n, raw in lines]
        groups: dict[_Facts, _Group] = {}
        done: dict[int, BatchRecord] = {}
        for n, p in parsed:
            if isinstance(p, BatchRecord):
                done[n] = p
            else:
                atoms = p.case.atoms()
                key = _Facts(p, atoms)
                groups.setdefault(key, _Group(key, p, atoms)).members.append((n, p.case))
        for group, out in self._decided(groups.values()):
            if isinstance(out, CaseFailure):
                for n, case in group.members:
                    done[n] = BatchRecord(n, case.id, error=self._failure(case, out))
                continue
            loaded = group.loaded  # the cases of a group have the same version, facts and notes: one decision, each case's id and source
            made = with_input_notes(builder(loaded.choice.kb).build(loaded.case, out, loaded.choice.route, deferred=True), loaded.notes)
            for n, case in group.members:
                done[n] = BatchRecord(n, case.id, decision=made._for(case.id, case.source))
        return [done[n] for n, _ in parsed]

    def _decision_text(self, case: Case, out: Output, choice: Choice, notes: tuple = ()) -> str:
        """A decision's JSON text after its id: a template per shape of answer, the case's own parts put in (:mod:`~kineret_asp.decisions.record_texts`)."""
        made = builder(choice.kb)
        if notes:  # a Bundle's notes are its own: built for it alone
            fields = self.encoder.fields(with_input_notes(made.build(case, out, choice.route), notes))
            fields.pop("id")
            return self.encoder.encode(fields)[1:]
        return self.texts.text(made, case, out, choice.route)

    def json_lines(self, lines: Sequence[tuple[int, Any]]) -> str:
        """Decide a chunk straight to output text; cached decisions skip the solver."""
        return self.decide(lines)[0]

    def decide(self, lines: Sequence[tuple[int, Any]]) -> tuple[str, int]:
        """A chunk's records as JSON lines, and how many of them are error records."""
        parsed = [(n, self.parse(n, raw)) for n, raw in lines]
        texts: dict[int, str] = {}
        errors = 0
        groups: dict[_Facts, _Group] = {}
        for n, c in parsed:
            if isinstance(c, BatchRecord):
                texts[n] = self.dumps(c.to_dict())
                errors += 1
                continue
            rest = self._group(groups, n, c)
            if rest is not None:
                texts[n] = f'{{"line": {n}, "id": {id_text(c.case.id)}, {rest}'
        for group, out in self._decided(groups.values()):
            members = group.members
            self.cache.hits += len(members) - 1  # the same facts again in this chunk: decided once
            if isinstance(out, CaseFailure):
                for n, case in members:
                    message = self._failure(case, out)
                    texts[n] = self.dumps({"line": n, "id": case.id, "error": message, "errors": [message]})
                errors += len(members)
                continue
            loaded = group.loaded
            rest = self._decision_text(loaded.case, out, loaded.choice, loaded.notes)
            self.cache.put(group.key, rest)
            for n, case in members:
                texts[n] = f'{{"line": {n}, "id": {id_text(case.id)}, {rest}'
        if self.log is not None:
            from ..decision_log import LogError

            try:
                self._record(parsed, texts)
            except LogError as exc:  # a decision that cannot be recorded is not given: each becomes an error record
                for n, c in parsed:
                    if not isinstance(c, BatchRecord) and "decision" in json.loads(texts[n]):
                        message = f"{self.source}:{n}: {exc}"
                        texts[n] = self.dumps({"line": n, "id": c.case.id, "error": message, "errors": [message]})
                        errors += 1
        return "\n".join([*[texts[n] for n, _ in parsed], ""]), errors  # each record and its newline, no record copied to add it

    def _record(self, parsed: list, texts: dict[int, str]) -> None:
        """The chunk's decided lines in the decision log (source: batch; request id: where the line was)."""
        from ..decision_log import Entry, open_log

        if isinstance(self.log, str):
            self.log = open_log(self.log)
        entries, versions = [], {}
        for n, c in parsed:
            if isinstance(c, BatchRecord):
                continue
            record = json.loads(texts[n])
            if "decision" not in record:
                continue
            record.pop("line", None)
            entries.append(Entry("batch", c.case.to_dict(), record, f"{self.source}:{n}"))
            versions[id(c.choice.kb)] = c.choice.kb  # each line's rule files kept with the version that decided it
        if entries:
            self.log.record_many(entries, list(versions.values()))


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


def chunks(items: Iterable[Any], size: int, max_bytes: Optional[int] = None) -> Iterator[list[Any]]:
    """Items in lists of at most ``size``; with ``max_bytes``, (n, bytes) items also in at most that many bytes.

    Sizing chunks by bytes as well as by count keeps memory flat in the size
    of cases, not only in their number: a line's bytes bound the facts it
    gives (a chunk of big cases holds fewer of them).
    """
    chunk: list[Any] = []
    weight = 0
    for item in items:
        chunk.append(item)
        if max_bytes is not None:
            raw = item[1]
            weight += len(raw) if isinstance(raw, (bytes, str)) else 0
        if len(chunk) >= size or (max_bytes is not None and weight >= max_bytes):
            yield chunk
            chunk = []
            weight = 0
    if chunk:
        yield chunk


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


FIRST_ERRORS = 3
"""Error records whose lines the batch's summary repeats (the rest are in the output)."""


def count_lines(stream: IO[bytes]) -> Optional[int]:
    """Lines in a regular file from its current position (the stream left where it was); None for a pipe or a terminal."""
    import os
    import stat

    try:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode) or not stream.seekable():
            return None
        at = stream.tell()
    except (OSError, ValueError, AttributeError):
        return None
    lines = 0
    last = b"\n"
    try:
        while True:
            block = stream.read(1 << 20)
            if not block:
                break
            lines += block.count(b"\n")
            last = block[-1:]
    finally:
        stream.seek(at)
    return lines + (last != b"\n")


def clock(seconds: float) -> str:
    """Seconds as h:mm:ss or m:ss."""
    whole = max(int(round(seconds)), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """A one-line progress report on stderr for long runs, in the KB's words.

    With ``total`` (the cases of an input file, known before the run) the
    line gives the count of the total, the percent done, the rate and the
    time left at that rate; without it (stdin), the count and the rate.
    ``words`` gives the KB's :class:`~kineret_asp.knowledge.vocabulary.Vocabulary`
    when the first line is written (the KB is loaded by then).
    """

    def __init__(self, enabled: bool, stream: Optional[IO[str]] = None, total: Optional[int] = None, words: Optional[Callable[[], Any]] = None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.words = words
        self.start = time.perf_counter()
        self.last = 0.0
        self.width = 0

    def line(self, done: int, seconds: float) -> str:
        """The progress line after ``done`` cases in ``seconds``."""
        vocabulary = self.words() if self.words is not None else None
        rate = done / max(seconds, 1e-9)
        values: dict[str, Any] = {"done": f"{done:,}", "rate": f"{rate:,.0f}"}
        if self.total:
            left = max(self.total - done, 0)
            values.update(total=f"{self.total:,}", percent=f"{min(100.0, 100.0 * done / self.total):.0f}", eta=clock(left / rate) if rate > 0 else "?")
            key = "batch_progress"
        else:
            key = "batch_progress_open"
        if vocabulary is None:
            return " ".join(f"{k}={v}" for k, v in values.items())
        return vocabulary.word(key, **values)

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self.last >= 0.5:
            self.last = now
            text = self.line(done, now - self.start)
            self.stream.write("\r" + text + " " * max(self.width - len(text), 0))
            self.width = len(text)
            self.stream.flush()

    def close(self, done: int) -> None:
        if self.enabled:
            self.update(done, force=True)
            self.stream.write("\n")
            self.stream.flush()


def error_lines(text: str) -> list[str]:
    """The ``error`` of each error record among JSON lines."""
    found = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("error"), str):
            found.append(record["error"])
    return found


@dataclass
class BatchSummary:
    records: int
    errors: int
    skipped: int
    seconds: float
    over_limit: int = 0
    first_errors: tuple[str, ...] = ()
    """The first FIRST_ERRORS error records' messages, in input order."""


class BatchStopped(KineretError):
    """The batch cannot go on (the KB does not load, or a worker cannot start): one line each, and an exit code."""

    def __init__(self, lines: Sequence[str], code: int):
        self.lines = list(lines)
        self.code = code
        super().__init__(self.lines[0] if self.lines else "batch stopped")


class OutputError(KineretError):
    """Writing the records failed (disk full, a closed pipe): the output holds only complete records."""


def count_errors(text: str) -> int:
    """Error records among JSON lines (exact: the key after the id decides, whatever the id holds)."""
    errors = 0
    decode = _RAW_DECODE
    for line in text.splitlines():
        at = line.find('"id": ')
        if at < 0:
            continue
        try:
            _, end = decode(line, at + 6)
        except ValueError:
            continue
        errors += line.startswith(', "error": ', end)
    return errors


_RAW_DECODE = json.JSONDecoder().raw_decode
_RECORD = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


def error_record(number: int, raw: Optional[bytes], message: str) -> str:
    """An error record for a line the workers could not decide (the id read from the line when it can be)."""
    data: Any = None
    if raw is not None:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data = None
    return safe_json(_RECORD({"line": number, "id": _id_of(data), "error": message})) + "\n"


def _batch_server(kb: Any, source: str, time_limit: Optional[float], cache: int, log: Optional[str] = None) -> Callable[[tuple], Any]:
    """What a worker process runs: ("start", None) loads the KB, ("chunk", lines) decides them.

    A chunk's records come back as their UTF-8 bytes, what the output is
    written with: a text would be encoded to be sent, decoded when received,
    and encoded again to be written.
    """
    state: dict[str, BatchWorker] = {}

    def serve(request: tuple) -> Any:
        kind, payload = request
        if kind == "start":
            try:
                worker = state["worker"] = BatchWorker(kb if isinstance(kb, Chooser) else Chooser.of(kb), source, time_limit, cache, log)
                for version in worker.chooser.versions():  # rewrite (or read from the cache) now, not within a chunk's deadline
                    worker.engine(version).program
                batch_collector()  # what is loaded lives as long as the worker
            except KbError as exc:
                return ("kb", [exc.summary_line()])
            except KineretError as exc:
                return ("kb", [str(exc)])
            return ("ready", None)
        text, errors = state["worker"].decide(payload)
        return ("text", text.encode("utf-8"), errors)

    return serve


class Supervisor:
    """Worker processes deciding chunks of lines, in order, each chunk and case within its deadline.

    A chunk that passes its deadline (or a worker's memory limit) is decided
    again one case at a time in a fresh worker, so that the case at fault
    alone becomes an error record that names the limit, and the batch goes
    on with the next case.
    """

    def __init__(self, serve: Callable[[tuple], Any], jobs: int, limits: Limits, source: str):
        self.serve = serve
        self.limits = limits
        self.source = source
        self.over_limit = 0
        self.workers: list[Worker] = []
        try:
            for _ in range(jobs):
                worker = Worker(serve, limits)
                worker.send(("start", None))
                self.workers.append(worker)
            deadline = self._deadline(START_ALLOWANCE)
            for worker in self.workers:
                self._started(worker.receive(deadline))
        except BaseException:
            self.close()
            raise

    def _deadline(self, extra: float) -> Optional[float]:
        return None if self.limits.time is None else time.monotonic() + self.limits.time + extra

    def _started(self, outcome: Outcome) -> None:
        if not outcome.ok:
            raise BatchStopped([f"the KB could not be loaded within {self.limits.describe(outcome.status)}"], EXIT_LIMIT)
        if outcome.value[0] == "kb":
            raise BatchStopped(outcome.value[1], 2)

    def _fresh(self) -> Worker:
        worker = Worker(self.serve, self.limits)
        self._started(worker.call(("start", None), None if self.limits.time is None else self.limits.time + START_ALLOWANCE))
        return worker

    def _chunk_deadline(self, size: int) -> Optional[float]:
        return self._deadline(CHUNK_ALLOWANCE + size * CASE_ALLOWANCE)

    def results(self, work: Iterable[list[tuple[int, Optional[bytes]]]]) -> Iterator[tuple[bytes, int, int]]:
        """(records as UTF-8 bytes, how many, how many are errors) for each chunk of ``work``, in order (one record a line)."""
        idle: deque[Worker] = deque(self.workers)
        pending: deque[tuple[list, Worker, Optional[float]]] = deque()
        feed = iter(work)
        exhausted = False
        while True:
            while idle and not exhausted:
                chunk = next(feed, None)
                if chunk is None:
                    exhausted = True
                    break
                worker = idle.popleft()
                worker.send(("chunk", chunk))
                pending.append((chunk, worker, self._chunk_deadline(len(chunk))))
            if not pending:
                return
            chunk, worker, deadline = pending.popleft()
            outcome = worker.receive(deadline)
            if outcome.ok:
                idle.append(worker)
                yield outcome.value[1], len(chunk), outcome.value[2]
                continue
            self._replace(worker)
            yield self._one_by_one(chunk, idle)

    def _replace(self, worker: Worker) -> Worker:
        worker.stop()
        fresh = self._fresh()
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def _one_by_one(self, chunk: list[tuple[int, Optional[bytes]]], idle: deque) -> tuple[bytes, int, int]:
        """A chunk that did not finish, decided again case by case: the case at fault becomes an error record."""
        worker = idle.pop() if idle else None
        worker = worker if worker is not None and worker.alive() else self._replace_any(worker)
        texts: list[bytes] = []
        errors = 0
        for number, raw in chunk:
            outcome = worker.call(("chunk", [(number, raw)]), None if self.limits.time is None else self.limits.time + CASE_ALLOWANCE_ALONE)
            if outcome.ok:
                texts.append(outcome.value[1])
                errors += outcome.value[2]
                continue
            self.over_limit += 1
            errors += 1
            texts.append(error_record(number, raw, f"{self.source}:{number}: not decided: stopped at {self.limits.describe(outcome.status)}").encode("utf-8"))
            worker = self._replace(worker)
        idle.append(worker)
        return b"".join(texts), len(chunk), errors

    def _replace_any(self, worker: Optional[Worker]) -> Worker:
        if worker is not None:
            return self._replace(worker)
        fresh = self._fresh()
        self.workers.append(fresh)
        return fresh

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()


def write_all(sink: IO[bytes], data: bytes) -> None:
    """Write and flush; a failure leaves the file cut back to its last complete record."""
    try:
        position = sink.tell() if sink.seekable() else None
    except OSError:
        position = None
    try:
        view = memoryview(data)
        while view:
            written = sink.write(view)
            view = view[written if written is not None else 0 :]
        sink.flush()
    except OSError as exc:
        if position is not None:
            try:
                sink.seek(position)
                sink.truncate(position)
            except (OSError, ValueError):
                pass
        raise OutputError(f"cannot write the records: {exc.strerror or exc}") from exc


def _decided_here(worker: BatchWorker, work: Iterable[list[tuple[int, Optional[bytes]]]]) -> Iterator[tuple[bytes, int, int]]:
    """What :meth:`Supervisor.results` gives, from a worker in this process."""
    for chunk in work:
        text, bad = worker.decide(chunk)
        yield text.encode("utf-8"), len(chunk), bad


def run_batch(
    source: IO[bytes],
    sink: IO[bytes],
    kb: Any,
    source_name: str,
    jobs: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
    start: int = 0,
    time_limit: Optional[float] = 10.0,
    cache: int = CACHE_ENTRIES,
    progress: Optional[Progress] = None,
    memory_limit: Optional[int] = DEFAULT_MEMORY_MB,
    chunk_bytes: int = CHUNK_BYTES,
    log: Optional[str] = None,
) -> BatchSummary:
    """Decide every line of ``source`` and write one record per line to ``sink``.

    ``kb`` is a KB tree's folder (each line decided by the version chosen
    for it), a version folder or a KnowledgeBase (every line decided by it),
    a :class:`~kineret_asp.cases.versions.Chooser`, or None (the packaged KB). With
    a ``time_limit`` (seconds per case) the cases are decided in ``jobs``
    worker processes that are stopped at the limit, grounding included;
    without one and with one job, in this process. ``log``: the URL of a
    decision log every decided line is recorded in (``--log``).
    """
    began = time.perf_counter()
    progress = progress or Progress(False)
    work = chunks(read_lines(source, start), chunk_size, chunk_bytes)
    done = errors = 0
    first: list[str] = []
    supervisor: Optional[Supervisor] = None
    if time_limit is None and jobs <= 1:
        worker = BatchWorker(kb, source_name, time_limit, cache, log)
        for version in worker.chooser.versions():
            worker.engine(version).program
        results: Iterable[tuple[bytes, int, int]] = _decided_here(worker, work)
    else:
        supervisor = Supervisor(_batch_server(kb, source_name, time_limit, cache, log), jobs, Limits(time_limit, memory_limit), source_name)
        results = supervisor.results(work)
    try:
        with frozen_heap():
            for data, records, bad in results:
                write_all(sink, data)
                done += records
                errors += bad
                if bad and len(first) < FIRST_ERRORS:
                    first.extend(error_lines(data.decode("utf-8"))[: FIRST_ERRORS - len(first)])
                progress.update(done)
    finally:
        if supervisor is not None:
            supervisor.close()
    progress.close(done)
    return BatchSummary(done, errors, start, time.perf_counter() - began, supervisor.over_limit if supervisor else 0, tuple(first))


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
    worker = BatchWorker(Chooser.of(kb), source, time_limit, cache=0)
    numbered = ((n, dict(c) if isinstance(c, Mapping) and not isinstance(c, dict) else c) for n, c in enumerate(cases, start=1))
    for chunk in chunks(numbered, chunk_size):
        usable = [(n, c) for n, c in chunk if isinstance(c, (str, bytes, dict, Case))]
        with frozen_heap():  # a chunk's work with the batch's collector; the caller's code between chunks with its own
            decided = {r.line: r for r in worker.records(usable)} if usable else {}
        for n, c in chunk:
            yield decided.get(n) or BatchRecord(n, None, error=f"{source}:{n}: expected a case (a JSON text, a dict or a Case), got {type(c).__name__}")
