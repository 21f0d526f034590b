"""A cache of program texts derived from a KB, kept between processes: a pure speed-up.

Rewriting a KB (for chunks of cases, for the resident engine, for
``missing``) walks its syntax tree through clingo's AST API, a tenth of a
second or more: most of a one-case command's start. The result depends only
on the bytes that made it, so it is kept in a file named by a digest of
those, like Python's ``__pycache__``.

An entry is used only if it is what this process would compute:

- it is keyed by a digest of every byte that made it: the KB's rule files
  (the loader reads nothing else: ``#include`` is refused), this package's
  own code and version, and clingo's version;
- it is authenticated with an HMAC-SHA-256 whose key is a per-user secret
  kept outside the cache folder (:func:`key_path`, mode 0600, made on first
  use): someone who can write the cache folder but not read the key cannot
  make an entry that is used. A key file that is a link, not a regular
  file, not the user's own or readable by others is never used, and then
  neither is the cache;
- a special file, a link, an entry over :data:`MAX_ENTRY_BYTES`, or a folder
  that is a link or not the user's own is skipped without reading past the
  cap (opened without following links and without blocking, checked to be
  a regular file before the first byte is read), and computed again.

A file that was edited, truncated, forged or damaged in any way is computed
again and rewritten, never used and never fatal. Entries not read for
:data:`MAX_AGE_DAYS` are pruned when a new one is written.

The folder is ``$KINERET_ASP_CACHE``, else ``$XDG_CACHE_HOME/kineret-asp``,
else ``~/.cache/kineret-asp``; ``KINERET_ASP_CACHE=off`` turns the cache off.
The key is ``$KINERET_ASP_CACHE_KEY``, else
``$XDG_CONFIG_HOME/kineret-asp/cache-key``, else
``~/.config/kineret-asp/cache-key``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import stat
import time
from pathlib import Path
from typing import Callable, Optional

import clingo

from .tree_files import read_fd_capped

FORMAT = "3"
MAX_AGE_DAYS = 30
MAX_ENTRY_BYTES = 16 * 1024 * 1024
"""The largest entry read (the largest this KB makes is about 150 KB)."""
KEY_BYTES = 32
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def cache_dir() -> Optional[Path]:
    setting = os.environ.get("KINERET_ASP_CACHE")
    if setting is not None:
        return None if setting.lower() in ("", "off", "0", "no") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kineret-asp"


def key_path() -> Path:
    """Where the per-user secret that authenticates entries is kept (never inside the cache folder)."""
    setting = os.environ.get("KINERET_ASP_CACHE_KEY")
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "kineret-asp" / "cache-key"


def _own(st: os.stat_result) -> bool:
    return not hasattr(os, "geteuid") or st.st_uid == os.geteuid()


def read_capped(path: Path, cap: int) -> Optional[bytes]:
    """The bytes of a regular file of the user's own, at most ``cap`` of them; None for anything else.

    The file is opened without following a link and without blocking (a
    FIFO does not hang the open), checked with ``fstat`` to be a regular
    file no larger than ``cap``, and read no further than ``cap + 1`` bytes
    (a file that grew meanwhile is refused, not read to its end).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _own(st) or st.st_size > cap:
            return None
        return read_fd_capped(fd, cap)
    except OSError:
        return None
    finally:
        os.close(fd)


def _private_folder(folder: Path, make: bool) -> bool:
    """Whether ``folder`` is a real folder (not a link) of the user's own; made (mode 0700) when asked."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        if not make:
            return False
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(folder)
        except OSError:
            return False
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _own(st)


def _inside(path: Path, folder: Path) -> bool:
    try:
        real, base = os.path.realpath(path), os.path.realpath(folder)
    except OSError:
        return True
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def secret_key(folder: Optional[Path] = None) -> Optional[bytes]:
    """The per-user key, made on first use; None when it cannot be had safely (then the cache is not used).

    A key file that is a link, not a regular file, not the user's own, has
    any permission for group or others, has the wrong size, or lies inside
    the cache folder is refused: an entry is only as safe as its key.
    """
    path = key_path()
    if folder is not None and _inside(path, folder):
        return None
    key = _read_key(path)
    if key is not None or path.exists() or os.path.islink(path):
        return key
    if not _private_folder(path.parent, make=True):
        return None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:  # made meanwhile by another process
        return _read_key(path)
    except OSError:
        return None
    try:
        os.write(fd, secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n")
    finally:
        os.close(fd)
    return _read_key(path)


def _read_key(path: Path) -> Optional[bytes]:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not _own(st) or st.st_mode & 0o077:
        return None
    raw = read_capped(path, 4 * KEY_BYTES)
    if raw is None:
        return None
    text = raw.strip()
    if len(text) != 2 * KEY_BYTES:
        return None
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None


@functools.cache
def code_digest() -> str:
    """A digest of this package's own code: a derived program depends on the code that derived it."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent.parent  # the package, every subpackage included
    for path in sorted(here.rglob("*.py")):
        try:
            data = path.read_bytes()
        except OSError:
            data = b"\0unreadable"
        h.update(path.relative_to(here).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def entry_key(kind: str, digest: str) -> str:
    """What an entry is named by: the kind of program and a digest of every byte that made it."""
    from .. import __version__

    return hashlib.sha256("\0".join([FORMAT, kind, digest, __version__, code_digest(), clingo.__version__]).encode()).hexdigest()


def _mac(secret: bytes, key: str, body: bytes) -> str:
    return hmac.new(secret, key.encode("ascii") + b"\0" + body, hashlib.sha256).hexdigest()


def _header(secret: bytes, key: str, body: bytes) -> bytes:
    return f"% kineret-asp cache {FORMAT} {key} hmac-sha256 {_mac(secret, key, body)}\n".encode("ascii")


def read_entry(path: Path, key: str, secret: bytes) -> Optional[str]:
    """The text of a cache entry, or None unless it is a regular file of the user's own whose key and HMAC both check."""
    raw = read_capped(path, MAX_ENTRY_BYTES)
    if raw is None:
        return None
    first, newline, body = raw.partition(b"\n")
    if not newline:
        return None
    expected = _header(secret, key, body)
    if not hmac.compare_digest(first + b"\n", expected):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        os.utime(path, follow_symlinks=False)  # a read keeps the entry alive
    except (OSError, NotImplementedError):
        pass
    return text


def cached_text(kind: str, digest: str, compute: Callable[[], str]) -> str:
    """The text for (kind, digest of the KB's bytes), from an authenticated cache entry or computed and stored."""
    place = _place(kind, digest)
    if place is None:
        return compute()
    text = read_entry(place[0], place[1], place[2])
    if text is not None:
        return text
    value = compute()
    _store(place, value)
    return value


def lookup(kind: str, digest: str) -> Optional[str]:
    """The text of an authenticated entry for (kind, digest), or None (no entry, a forged or damaged one, or no cache)."""
    place = _place(kind, digest)
    return None if place is None else read_entry(*place)


def store(kind: str, digest: str, text: str) -> None:
    """Keep a text for (kind, digest); a pure speed-up, so a failure to write is ignored."""
    place = _place(kind, digest)
    if place is not None:
        _store(place, text)


def _place(kind: str, digest: str) -> Optional[tuple[Path, str, bytes]]:
    """Where an entry lives, its key and the secret that authenticates it; None when the cache is off or unsafe to use."""
    folder = cache_dir()
    if folder is None or not _private_folder(folder, make=True):
        return None
    secret = secret_key(folder)
    if secret is None:
        return None
    key = entry_key(kind, digest)
    return folder / f"{kind}-{key[:32]}.lp", key, secret


def _store(place: tuple[Path, str, bytes], value: str) -> None:
    path, key, secret = place
    body = value.encode("utf-8")
    if len(body) > MAX_ENTRY_BYTES:
        return
    import tempfile  # only to write an entry

    try:
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(_header(secret, key, body) + body)
        os.replace(tmp.name, path)  # replaces a link or a special file by the name, never writes through it
        prune(path.parent)
    except OSError:
        pass


def prune(folder: Path, max_age_days: float = MAX_AGE_DAYS) -> int:
    """Remove entries (and stray temporary files) not used for a while; returns how many."""
    limit = time.time() - max_age_days * 86400
    removed = 0
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.endswith((".lp", ".tmp")):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < limit:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
    return removed
