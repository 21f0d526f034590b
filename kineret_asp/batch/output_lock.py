"""One writer per output file: an exclusive lock that names its holder.

Two ``batch -o OUT --resume`` at once would both append every record (or
interleave two inputs into lines no reader can parse). Before an output file
is opened for writing, its lock file ``OUT.lock`` (beside the file a link
leads to) is locked with
``fcntl.flock`` (held until the process ends, released by the kernel even
after ``kill -9``) and holds the holder's pid, so that a second writer
refuses with one line naming it. Outputs that are not regular files
(``/dev/null``, a pipe, a terminal) are not locked.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Optional

from ..errors import KineretError


class OutputBusy(KineretError):
    """Another process holds the output's lock."""


class OutputLock:
    """An exclusive lock on ``path`` (through ``path.lock``); :meth:`release` removes the lock file.

    The lock is the output's real file's: a path through links is resolved
    first (so a link to a file being written finds its lock, and the
    holder's pid), and :meth:`writing` also locks the file itself by its
    device and inode (so a hard link, a second name of the same file, is
    refused too).
    """

    def __init__(self, path: Path):
        self.path = path
        real = Path(os.path.realpath(path))
        self.lock_path = real.with_name(real.name + ".lock")
        self.fd: Optional[int] = None

    @staticmethod
    @contextmanager
    def writing(path: Path, resume: bool) -> Iterator[tuple[IO[bytes], int]]:
        """The output opened for writing under its locks, and the records to skip (``resume``).

        The file is opened without truncating it, locked (``flock``, by
        inode), and only then cut: to nothing, or (``resume``) back to its
        last complete record.
        """
        from .run import resume_point

        with OutputLock(path) as lock:
            real = Path(os.path.realpath(path))
            fd = os.open(real, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                import fcntl

                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise OutputBusy(f"{path}: another kineret-asp batch is writing this file (under another name: {lock.lock_path} is not its lock); wait for it to end, or write elsewhere") from None
                start = resume_point(real) if resume else 0
                if not resume:
                    os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_END)
                sink = os.fdopen(fd, "wb", buffering=0)
            except BaseException:
                os.close(fd)
                raise
            with sink:
                yield sink, start

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
