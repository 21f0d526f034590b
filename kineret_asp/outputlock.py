"""One writer per output file: an exclusive lock that names its holder.

Two ``batch -o OUT --resume`` at once would both append every record (or
interleave two inputs into lines no reader can parse). Before an output file
is opened for writing, its lock file ``OUT.lock`` is locked with
``fcntl.flock`` (held until the process ends, released by the kernel even
after ``kill -9``) and holds the holder's pid, so that a second writer
refuses with one line naming it. Outputs that are not regular files
(``/dev/null``, a pipe, a terminal) are not locked.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

from .errors import KineretError


class OutputBusy(KineretError):
    """Another process holds the output's lock."""


class OutputLock:
    """An exclusive lock on ``path`` (through ``path.lock``); :meth:`release` removes the lock file."""

    def __init__(self, path: Path):
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.fd: Optional[int] = None

    @staticmethod
    def needed(path: Path) -> bool:
        """Whether an output path is (or will be) a regular file, the only kind that is locked."""
        try:
            return stat.S_ISREG(os.stat(path).st_mode)
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def acquire(self) -> "OutputLock":
        """Take the lock or raise :class:`OutputBusy` naming the holder; OSError when it cannot be made."""
        import fcntl

        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                who = f"pid {holder}" if holder else "another process"
                raise OutputBusy(f"{self.path}: another kineret-asp batch ({who}) is writing this file; wait for it to end, or write elsewhere (lock: {self.lock_path})") from None
            except OSError:
                os.close(fd)
                raise
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the lock file as we opened it: take the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.lock_path)  # while still held: a waiting writer retries on the new file
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text.isdigit() else None
    except (OSError, UnicodeDecodeError):
        return None
