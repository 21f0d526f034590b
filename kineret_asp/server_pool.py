"""Worker processes for the HTTP server: every request's work within its limits, on every core.

The server's event loop (one process) reads requests and writes answers;
the work (reading the case, deciding, ``missing``, ``what-if``, a batch
chunk) runs in a pool of worker processes forked from it once the KB is
loaded (so each starts warm). A request has a deadline: at the deadline a
worker still at it is killed (clingo cannot be interrupted while it grounds)
and replaced, so no request goes on using a core after its answer said it
was stopped. Requests wait in a bounded queue; past its bound a request is
refused at once (the server is busy) instead of waiting out its deadline.

Small requests of one kind that wait together (``evaluate`` above all) go
to a worker as one message: one round trip for many answers, and the worker
may decide them in one grounding where that is faster.

:class:`InProcess` has the same interface and decides in a thread of this
process, without process limits, for an application embedded in a test or
another program (``create_app(workers=0)``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .limits import DIED, MEMORY, OK, TIMEOUT, Limits, Worker

CHUNK_KINDS = frozenset({"evaluate"})
"""Kinds of job that are sent to a worker together when several wait."""
MAX_CHUNK = 64
"""The most jobs sent to a worker in one message, when enough wait to be decided in one grounding."""
SMALL_CHUNK = 4
"""The most jobs sent in one message when fewer wait (each is then decided on its own, and every
job of a message waits for the last: small messages keep every worker busy and the tail short)."""


class PoolBusy(Exception):
    """The queue is full: the request is refused at once."""


class JobStopped(Exception):
    """A job passed a limit: ``status`` is time, memory or died."""

    def __init__(self, status: str, detail: str = ""):
        super().__init__(status)
        self.status = status
        self.detail = detail


@dataclass(eq=False)
class Job:
    kind: str
    payload: Any
    deadline: float
    future: "asyncio.Future[Any]"
    alone: bool = False  # sent to a worker by itself (after a chunk it was in was stopped)
    timer: Optional[asyncio.TimerHandle] = None


@dataclass(eq=False)
class _Slot:
    """One worker process and the jobs it is working on."""

    worker: Worker
    jobs: list = field(default_factory=list)


class Pool:
    """``size`` worker processes running ``serve(list of (kind, payload)) -> list of replies``."""

    def __init__(self, serve: Callable[[list], list], size: int, limits: Limits, queue_limit: int, chunk_min: int = MAX_CHUNK):
        """``chunk_min``: from this many waiting jobs of a kind on, they go to a worker together (up to
        :data:`MAX_CHUNK`), which decides them in one grounding; fewer go :data:`SMALL_CHUNK` at a time."""
        self.serve = serve
        self.chunk_min = chunk_min
        self.size = max(1, size)
        self.limits = limits
        self.queue_limit = queue_limit
        self.slots: list[_Slot] = []
        self.idle: deque[_Slot] = deque()
        self.pending: deque[Job] = deque()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.replaced = 0
        self.rewarm: Any = None

    def start(self, warm: Any = None, seconds: Optional[float] = None, rewarm: Any = None) -> "Pool":
        """Fork the workers (before serving: they start with what this process has loaded).

        With ``warm``, each worker first does that job (kind, payload) once,
        within ``seconds``: the pages it shares with this process that a
        request touches are copied then (a fresh worker's first requests took
        up to a second), not while a client waits. ``rewarm``: the (lighter)
        job a worker that replaces a killed one does before it takes requests.
        """
        self.rewarm = rewarm
        for _ in range(self.size):
            slot = _Slot(self._fork())
            self.slots.append(slot)
            self.idle.append(slot)
        if warm is not None:
            for slot in self.slots:
                slot.worker.send([warm])
            deadline = None if seconds is None else time.monotonic() + seconds
            for slot in self.slots:
                if not slot.worker.receive(deadline).ok:  # a worker that cannot warm up is replaced, cold
                    slot.worker = self._fork()
        return self

    def _fork(self) -> Worker:
        def serve(message: list) -> list:
            if not getattr(serve, "frozen", False):
                from .asp.solving import killed_at_limit

                gc.freeze()  # what the parent loaded lives as long as the worker: the collector leaves it alone
                killed_at_limit()  # this process is killed at each job's deadline: the solver needs no limit of its own
                serve.frozen = True  # type: ignore[attr-defined]
            return self.serve(message)

        return Worker(serve, self.limits, release=True)

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            self.loop = loop
            for slot in self.slots:
                loop.add_reader(slot.worker.conn.fileno(), self._on_reply, slot)
        return loop

    async def submit(self, kind: str, payload: Any, seconds: float, queued: bool = True) -> Any:
        """The reply to one job, within ``seconds``; :class:`JobStopped` at a limit, :class:`PoolBusy` when full.

        ``queued``: the job counts against the queue's bound (a batch's
        chunks, whose answer has begun, wait instead).
        """
        loop = self._bind()
        if queued and len(self.pending) >= self.queue_limit:
            raise PoolBusy()
        job = Job(kind, payload, loop.time() + seconds, loop.create_future())
        job.timer = loop.call_at(job.deadline, self._expire, job)
        self.pending.append(job)
        self._dispatch()
        try:
            return await job.future
        finally:
            job.timer.cancel()

    def _dispatch(self) -> None:
        while self.idle and self.pending:
            slot = self.idle.pop()  # the worker used last: its caches are warm
            first = self.pending.popleft()
            jobs = [first]
            if first.kind in CHUNK_KINDS and not first.alone:
                waiting = 1 + sum(1 for job in self.pending if job.kind == first.kind and not job.alone)
                most = MAX_CHUNK if waiting >= self.chunk_min else SMALL_CHUNK
                rest: deque[Job] = deque()
                while self.pending:
                    job = self.pending.popleft()
                    if job.kind == first.kind and not job.alone and len(jobs) < most:
                        jobs.append(job)
                    else:
                        rest.append(job)
                self.pending = rest
            slot.jobs = jobs
            try:
                slot.worker.send([(j.kind, j.payload) for j in jobs])
            except (OSError, ValueError):
                self._lost(slot, DIED)

    def _on_reply(self, slot: _Slot) -> None:
        worker = slot.worker
        try:
            if not worker.conn.poll(0):
                return
            status, value = worker.conn.recv()
        except (EOFError, OSError):
            self._kill(slot)
            self._lost(slot, worker._cause())
            return
        jobs, slot.jobs = slot.jobs, []
        worker.busy = False
        if status != OK:
            self._kill(slot)
            self._fail(jobs, status, value or "")
            self._replace(slot, rewarm=bool(jobs))  # a worker that failed warming up is not warmed again
        else:
            for job, reply in zip(jobs, value):
                if not job.future.done():
                    job.future.set_result(reply)
            self.idle.append(slot)
        self._dispatch()

    def _expire(self, job: Job) -> None:
        """A job's deadline: 504 for it; a worker still at it is killed, and its other jobs sent again alone."""
        if job.future.done():
            return
        if job in self.pending:
            self.pending.remove(job)
            job.future.set_exception(JobStopped(TIMEOUT))
            return
        for slot in self.slots:
            if job in slot.jobs:
                others = [j for j in slot.jobs if j is not job and not j.future.done()]
                slot.jobs = []
                self._kill(slot)
                job.future.set_exception(JobStopped(TIMEOUT))
                for other in reversed(others):
                    other.alone = True
                    self.pending.appendleft(other)
                self._replace(slot)
                self._dispatch()
                return

    def _lost(self, slot: _Slot, status: str) -> None:
        """A worker that ended without an answer (its memory limit, or a crash): its jobs fail, a new one takes its place."""
        jobs, slot.jobs = slot.jobs, []
        if not jobs:  # it was warming up
            self._replace(slot, rewarm=False)
            self._dispatch()
            return
        if len(jobs) > 1:  # which one was at fault is not known: each is tried again alone
            for job in reversed(jobs):
                job.alone = True
                self.pending.appendleft(job)
        else:
            self._fail(jobs, MEMORY if status == MEMORY else DIED, "")
        self._replace(slot)
        self._dispatch()

    def _fail(self, jobs: list, status: str, detail: str) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(JobStopped(status, detail))

    def _kill(self, slot: _Slot) -> None:
        """Stop a worker (killed if at work), its pipe no longer watched (before it is closed)."""
        if self.loop is not None and not slot.worker.conn.closed:
            try:
                self.loop.remove_reader(slot.worker.conn.fileno())
            except (OSError, ValueError):
                pass
        slot.worker.stop()

    def _replace(self, slot: _Slot, rewarm: bool = True) -> None:
        self._kill(slot)
        if slot in self.idle:
            self.idle.remove(slot)
        slot.worker = self._fork()
        self.replaced += 1
        if self.loop is not None:
            self.loop.add_reader(slot.worker.conn.fileno(), self._on_reply, slot)
        if rewarm and self.rewarm is not None:  # a new worker's first requests are slow (its pages are copied as it touches them)
            try:
                slot.worker.send([self.rewarm])  # it joins the idle ones when it answers (_on_reply)
                return
            except (OSError, ValueError):
                pass
        self.idle.appendleft(slot)  # taken last

    def close(self) -> None:
        for slot in self.slots:
            try:
                self._kill(slot)
            except RuntimeError:  # the loop is closed already
                slot.worker.stop()
        self.slots = []
        self.idle.clear()


class InProcess:
    """:class:`Pool`'s interface, decided in a thread of this process (no process limits: embedding, tests)."""

    def __init__(self, serve: Callable[[list], list]):
        self.serve = serve

    async def submit(self, kind: str, payload: Any, seconds: float, queued: bool = True) -> Any:
        import anyio

        try:
            (reply,) = await asyncio.wait_for(anyio.to_thread.run_sync(self.serve, [(kind, payload)]), seconds)
        except asyncio.TimeoutError:
            raise JobStopped(TIMEOUT) from None
        return reply

    def close(self) -> None:
        pass


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
