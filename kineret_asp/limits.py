"""Time and memory limits that hold: work runs in a worker process that can be stopped.

clingo cannot be interrupted while it grounds, and a KB rule can ground
without end (``p(X) :- X=1..100000000.``) or for one case only (a rule that
explodes for ``months`` 1200). A limit checked between solver calls never
fires there. So the work of every command that solves runs in a
:class:`Worker`: a process forked from the caller (cheap on Linux: it shares
the caller's loaded modules and KB), with its address space capped by
``RLIMIT_AS``, and killed when a call passes its deadline. The caller gets
an :class:`Outcome` that says what happened: a value, or which limit was
passed, in words that name the limit.

A worker never writes to the terminal: results travel back through a pipe,
its own stdout and stderr go nowhere, it ignores Ctrl-C (the caller decides),
and it dies with its parent, so an interrupted command leaves no worker
printing tracebacks into a closed pipe.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import click

DEFAULT_MEMORY_MB = 2048
"""The address space a worker may use, in MiB, unless told otherwise."""
MIN_MEMORY_MB = 256
"""Below this a worker cannot even hold clingo and the KB."""
START_ALLOWANCE = 5.0
"""Seconds a new worker may take on top of the time limit to load the KB."""

EXIT_LIMIT = 3
"""The exit code of a one-case command stopped by a limit."""

OK, TIMEOUT, MEMORY, DIED = "ok", "time", "memory", "died"


def valid_seconds(value: Any) -> float:
    """A time limit given in Python: a positive, finite number of seconds, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"time_limit: expected a positive, finite number of seconds, got {value!r}")
    return float(value)


class PositiveSeconds(click.ParamType):
    """A number of seconds: positive and finite (``nan``, ``inf``, 0 and negatives are refused)."""

    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"expected a positive, finite number of seconds, got {value!r}", param, ctx)
        return seconds


class MegaBytes(click.ParamType):
    """A memory size in MiB, at least :data:`MIN_MEMORY_MB`."""

    name = "MB"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        try:
            size = int(str(value), 10)
        except ValueError:
            self.fail(f"expected a whole number of MB, got {value!r}", param, ctx)
        if size < MIN_MEMORY_MB or size > 1 << 30:
            self.fail(f"expected at least {MIN_MEMORY_MB} MB, got {value!r}", param, ctx)
        return size


@dataclass(frozen=True)
class Limits:
    """How long a call may take (seconds, None: no limit) and how much memory a worker may use (MiB)."""

    time: Optional[float] = None
    memory_mb: Optional[int] = DEFAULT_MEMORY_MB

    def describe(self, kind: str, options: bool = True) -> str:
        """The limit of a kind, in words a user can act on (with the option that sets it)."""
        if kind == TIMEOUT:
            return f"the time limit of {self.time:g} s" + (" (--time-limit)" if options else "")
        if kind == MEMORY:
            return f"the memory limit of {self.memory_mb} MB" + (" (--memory-limit)" if options else "")
        return "a worker process that ended without an answer"


@dataclass(frozen=True)
class Outcome:
    """What came back from a call: ``status`` is ok, time, memory or died."""

    status: str
    value: Any = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK


@functools.cache
def _prctl() -> Any:
    """Linux's prctl, looked up once in the caller (not in every new worker: loading ctypes costs milliseconds)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except Exception:  # noqa: BLE001 - best effort: the pipe's EOF ends the worker too
        return None


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no orphan keeps working)."""
    prctl = _prctl()
    if prctl is None:
        return
    try:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort: the pipe's EOF ends the worker too
        pass


def _cap_memory(memory_mb: Optional[int]) -> None:
    if memory_mb is None:
        return
    import resource

    size = memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        size = min(size, hard)
    resource.setrlimit(resource.RLIMIT_AS, (size, hard))


def _release_inherited(keep: int) -> None:
    """Let go of every file the parent had open (its sockets above all), but the pipe ``keep`` and 0-2.

    A worker forked by a server would otherwise hold the server's client
    connections open after the server closed them. Each is replaced by
    ``/dev/null`` rather than closed: a Python object of the parent that
    still names the number can only ever close that, never a file the
    worker opens later.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        if fd > 2 and fd not in (keep, null):
            try:
                os.dup2(null, fd)
            except OSError:
                pass


def _serve(serve: Callable[[Any], Any], conn: Any, parent_end: Any, memory_mb: Optional[int], parent_pid: int, release: bool = False) -> None:
    """The worker's loop: one call per message, until the pipe closes. Never returns."""
    code = 0
    try:
        parent_end.close()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        _die_with_parent()
        if os.getppid() != parent_pid:  # the parent died before we asked to die with it
            os._exit(0)
        devnull = open(os.devnull, "w")
        sys.stdout = sys.stderr = devnull
        if release:
            _release_inherited(conn.fileno())
        _cap_memory(memory_mb)
        while True:
            try:
                argument = conn.recv()
            except (EOFError, OSError):
                break
            try:
                reply: tuple = (OK, serve(argument))
            except MemoryError:
                reply = (MEMORY, None)
            except RecursionError:
                reply = (DIED, "nested too deeply")
            except BaseException as exc:  # noqa: BLE001 - reported to the caller, never printed
                reply = (DIED, f"{type(exc).__name__}: {exc}"[:500])
            try:
                conn.send(reply)
            except MemoryError:
                conn.send((MEMORY, None))
            except (BrokenPipeError, EOFError, ConnectionError):
                break
    except BaseException:  # noqa: BLE001 - a worker prints nothing, whatever happens
        code = 1
    finally:
        os._exit(code)


class Worker:
    """A forked process that answers calls of ``serve``, one at a time, each within a deadline."""

    def __init__(self, serve: Callable[[Any], Any], limits: Limits, release: bool = False):
        """``release``: the worker lets go of every file its parent had open (a server's sockets)."""
        self.limits = limits
        self.conn, child = multiprocessing.Pipe()
        parent_pid = os.getpid()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()  # what the caller wrote is not written twice
            except (OSError, ValueError):
                pass
        _prctl()
        self.pid = os.fork()
        if self.pid == 0:
            _serve(serve, child, self.conn, limits.memory_mb, parent_pid, release)
        child.close()
        self.status: Optional[int] = None
        self.busy = False

    def _reap(self, block: bool) -> bool:
        """Whether the process has ended (collecting its exit status)."""
        if self.status is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.status = -1
            return True
        if pid == 0:
            return False
        self.status = status
        return True

    def alive(self) -> bool:
        return not self._reap(block=False)

    def send(self, argument: Any) -> None:
        """Start a call (the answer is read by :meth:`receive`)."""
        self.conn.send(argument)
        self.busy = True

    def receive(self, deadline: Optional[float]) -> Outcome:
        """The answer of the call in progress; at ``deadline`` (a ``time.monotonic()`` value) the worker is killed."""
        try:
            while True:
                wait = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
                if self.conn.poll(wait):
                    status, value = self.conn.recv()
                    self.busy = False
                    if status == OK:
                        return Outcome(OK, value)
                    self.stop()
                    return Outcome(status, None, value or "")
                if not self.alive() and not self.conn.poll(0):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop()
                    return Outcome(TIMEOUT)
        except (EOFError, OSError):
            pass
        self.stop()
        return Outcome(self._cause(), None, f"status {self.status}")

    def _cause(self) -> str:
        """Why a worker ended without an answer: killed by the kernel for its memory, or
        aborted by a failed allocation at the address-space limit, count as memory."""
        status = self.status or 0
        if self.limits.memory_mb is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS):
            return MEMORY
        return DIED

    def call(self, argument: Any, seconds: Optional[float]) -> Outcome:
        """Send one call and wait for it at most ``seconds``."""
        self.send(argument)
        return self.receive(None if seconds is None else time.monotonic() + seconds)

    def stop(self) -> None:
        """Kill the worker and collect it (a no-op when it has ended)."""
        self.busy = False
        if not self._reap(block=False):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(block=True)
        try:
            self.conn.close()
        except OSError:
            pass

    def close(self) -> None:
        """End the worker: closing the pipe ends its loop; it is killed if it does not end at once."""
        try:
            self.conn.close()
        except OSError:
            pass
        self._wait_exit(1.0)
        self.stop()

    def _wait_exit(self, seconds: float) -> None:
        """Wait at most ``seconds`` for the worker to end: woken by its end where Linux can (a pidfd), else by polling."""
        if self._reap(block=False):
            return
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            try:
                select.select([fd], [], [], seconds)
            finally:
                os.close(fd)
            self._reap(block=False)
            return
        ends = time.monotonic() + seconds
        while time.monotonic() < ends and not self._reap(block=False):
            time.sleep(0.005)


def run_limited(func: Callable[[], Any], limits: Limits, allowance: float = 0.0) -> Outcome:
    """Run ``func()`` once in a worker within the limits (plus ``allowance`` seconds)."""
    worker = Worker(lambda _: func(), limits)
    try:
        return worker.call(None, None if limits.time is None else limits.time + allowance)
    finally:
        worker.close()
