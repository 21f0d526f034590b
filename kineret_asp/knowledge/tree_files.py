"""Reading a KB folder that may not be trusted: its files, its links, its directives.

A KB is code: its rules decide coverage. What the loader reads of a KB
folder is exactly its rule files, and nothing they point at:

- a rule file that is a link is read only when the file it leads to lies
  inside the KB's tree; a link out of the tree is an error, never
  followed. Links to folders are never followed (so a link cannot loop);
- a rule file must be a regular file (a FIFO, a device or a socket named
  ``.lp`` is an error, and is opened without blocking, never read);
- ``#include`` is refused wherever it would be read as a directive: a KB is
  its folders' rule files. Every ``#include`` in a file's text is blanked
  out before clingo parses it, whatever this module thinks of its context,
  so clingo never opens a file the loader did not choose;
- ``#script`` is refused (the package never enables scripts; a script would
  not run, but it is named as the error it is).

:func:`copy_tree` copies a folder of a KB the same way (``new-version``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

MAX_RULE_FILE_BYTES = 64 * 1024 * 1024
"""The largest rule file read (this KB's largest is about 60 KB)."""

_OPEN = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class TreeFileError(Exception):
    """A file of a KB folder that is not read, and why (one line)."""


def real(path: Path | str) -> str:
    return os.path.realpath(path)


def inside(path: Path | str, root: Path | str) -> bool:
    """Whether ``path`` (links resolved) lies inside the folder ``root`` (links resolved)."""
    target, base = real(path), real(root).rstrip(os.sep)
    return target == base or target.startswith(base + os.sep)


def read_tree_file(path: Path, root: Optional[Path], cap: int = MAX_RULE_FILE_BYTES) -> bytes:
    """The bytes of a regular file of a KB tree, or :class:`TreeFileError` saying why not.

    A link is followed only to a file inside ``root`` (None: any link). The
    file is opened without blocking and checked to be a regular file of at
    most ``cap`` bytes before anything is read; nothing past the cap is read.
    """
    try:
        is_link = os.path.islink(path)
    except OSError:
        is_link = False
    if is_link and root is not None and not inside(path, root):
        raise TreeFileError(f"a link out of the KB tree (to {real(path)}): a KB is its own folder's files, and links out of it are not followed")
    try:
        fd = os.open(real(path) if is_link else path, _OPEN | (0 if is_link else getattr(os, "O_NOFOLLOW", 0)))
    except FileNotFoundError:
        raise TreeFileError("a link to nothing" if is_link else "file does not exist") from None
    except OSError as exc:
        raise TreeFileError(f"cannot read file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TreeFileError("not a regular file (a FIFO, device or socket is never read)")
        if st.st_size > cap:
            raise TreeFileError(f"file of {st.st_size} bytes, over the cap of {cap} bytes")
        data = read_fd_capped(fd, cap)
        if data is None:
            raise TreeFileError(f"file over the cap of {cap} bytes")
        return data
    except OSError as exc:
        raise TreeFileError(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_fd_capped(fd: int, cap: int) -> Optional[bytes]:
    """An open file's bytes, read until its end or one byte past ``cap``: None when it holds more (it may grow after ``fstat``)."""
    chunks = []
    size = 0
    while size <= cap:
        chunk = os.read(fd, min(1 << 20, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > cap else b"".join(chunks)


INCLUDE = "#include"
SCRIPT = "#script"


def directives(text: str) -> list[tuple[str, int, bool]]:
    """Every ``#include`` and ``#script`` of a clingo text: (directive, offset, read as code).

    The scan follows clingo's lexer: strings (on one line, with backslash
    escapes), ``%`` line comments, and ``%* ... *%`` block comments, which
    nest. ``read as code`` is False for one inside a comment; an ``#include``
    inside a string counts as code (it is refused either way: no KB needs it).
    """
    if INCLUDE not in text and SCRIPT not in text:  # nothing to find (every rule file of a KB): no scan
        return []
    out: list[tuple[str, int, bool]] = []
    i, n = 0, len(text)
    depth = 0  # block comment nesting
    while i < n:
        c = text[i]
        if depth:
            if text.startswith("%*", i):
                depth += 1
                i += 2
            elif text.startswith("*%", i):
                depth -= 1
                i += 2
            else:
                if text.startswith(INCLUDE, i):
                    out.append((INCLUDE, i, False))
                i += 1
            continue
        if c == "%":
            if text.startswith("%*", i):
                depth = 1
                i += 2
                continue
            end = text.find("\n", i)
            end = n if end < 0 else end
            found = text.find(INCLUDE, i, end)
            while found >= 0:
                out.append((INCLUDE, found, False))
                found = text.find(INCLUDE, found + 1, end)
            i = end
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            found = text.find(INCLUDE, i, min(j, n))
            while found >= 0:
                out.append((INCLUDE, found, True))
                found = text.find(INCLUDE, found + 1, min(j, n))
            i = j + 1 if j < n and text[j] == '"' else i + 1
            continue
        if c == "#":
            if text.startswith(INCLUDE, i):
                out.append((INCLUDE, i, True))
                i += len(INCLUDE)
                continue
            if text.startswith(SCRIPT, i):
                out.append((SCRIPT, i, True))
                end = text.find("#end.", i)
                i = n if end < 0 else end + 5
                continue
        i += 1
    return out


def blank_includes(text: str) -> str:
    """The text with every ``#include`` (in code, string or comment) made spaces of the same length.

    Whatever the scan decides, clingo's parser then never meets the
    directive: it cannot open a file. Where the directive goes on as one
    (a quoted or ``<...>`` name and its period), that is blanked too, so the
    rest of the file parses. Lines and columns stay where they were.
    """
    if INCLUDE not in text:
        return text
    chars = list(text)
    at = text.find(INCLUDE)
    while at >= 0:
        end = at + len(INCLUDE)
        i = end
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        close = {'"': '"', "<": ">"}.get(text[i]) if i < len(text) else None
        if close is not None:
            j = text.find(close, i + 1)
            if j >= 0 and "\n" not in text[i:j]:
                k = j + 1
                while k < len(text) and text[k] in " \t":
                    k += 1
                end = k + 1 if k < len(text) and text[k] == "." else j + 1
        for n in range(at, end):
            if chars[n] != "\n":
                chars[n] = " "
        at = text.find(INCLUDE, end)
    return "".join(chars)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of an offset."""
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


def copy_tree(source: Path, dest: Path, root: Path) -> None:
    """Copy a folder of a KB tree: links kept as links when they lead inside the tree, never followed.

    A link out of the tree, a link to nothing, or a special file (FIFO,
    device, socket) is a :class:`TreeFileError` naming it, raised before
    anything is written; ``__pycache__`` folders are left out.
    """
    problems = []
    for folder, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in [*dirs, *files]:
            path = Path(folder) / name
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                if not os.path.exists(path):
                    problems.append(f"{path}: a link to nothing")
                elif not inside(path, root):
                    problems.append(f"{path}: a link out of the KB tree (to {real(path)})")
            elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                problems.append(f"{path}: not a regular file or folder")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise TreeFileError(f"{problems[0]}{more}: not copied")
    import shutil

    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
