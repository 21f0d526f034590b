"""A cache of program texts derived from a KB, kept between processes.

Rewriting a KB (for chunks of cases, for the resident engine, for
``missing``) walks its syntax tree through clingo's AST API, a tenth of a
second or more: most of a one-case command's start. The result depends only
on the KB's text and the versions of this package and clingo, so it is kept
in a file named by a hash of those, like Python's ``__pycache__``.

An entry is trusted only after its digest is checked: the file holds a
header line with the key and the SHA-256 of the text after it, and the text
is used only when both match. A file that was edited, truncated or damaged
in any way is computed again and rewritten, never used and never fatal.
Entries not read for :data:`MAX_AGE_DAYS` are pruned when a new one is
written.

The folder is ``$KINERET_ASP_CACHE``, else ``$XDG_CACHE_HOME/kineret-asp``,
else ``~/.cache/kineret-asp``; ``KINERET_ASP_CACHE=off`` turns the cache off.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import clingo

FORMAT = "2"
MAX_AGE_DAYS = 30
MAX_ENTRY_BYTES = 64 * 1024 * 1024


def cache_dir() -> Optional[Path]:
    setting = os.environ.get("KINERET_ASP_CACHE")
    if setting is not None:
        return None if setting.lower() in ("", "off", "0", "no") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kineret-asp"


def _header(key: str, text: str) -> str:
    return f"% kineret-asp cache {key} sha256 {hashlib.sha256(text.encode('utf-8')).hexdigest()}\n"


def read_entry(path: Path, key: str) -> Optional[str]:
    """The text of a cache entry, or None unless its key and digest both check."""
    try:
        if path.stat().st_size > MAX_ENTRY_BYTES:
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    first, newline, rest = raw.partition(b"\n")
    if not newline:
        return None
    try:
        text = rest.decode("utf-8")
        head = first.decode("ascii")
    except UnicodeDecodeError:
        return None
    if head + "\n" != _header(key, text):
        return None
    try:
        os.utime(path)  # a read keeps the entry alive
    except OSError:
        pass
    return text


def cached_text(kind: str, digest: str, compute: Callable[[], str]) -> str:
    """The text for (kind, KB digest), from a checked cache entry or computed and stored."""
    from . import __version__

    folder = cache_dir()
    if folder is None:
        return compute()
    key = hashlib.sha256("\0".join([FORMAT, kind, digest, __version__, clingo.__version__]).encode()).hexdigest()
    path = folder / f"{kind}-{key[:32]}.lp"
    text = read_entry(path, key)
    if text is not None:
        return text
    value = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False, suffix=".tmp") as tmp:
            tmp.write(_header(key, value) + value)
        os.replace(tmp.name, path)
        prune(folder)
    except OSError:
        pass
    return value


def prune(folder: Path, max_age_days: float = MAX_AGE_DAYS) -> int:
    """Remove entries (and stray temporary files) not used for a while; returns how many."""
    limit = time.time() - max_age_days * 86400
    removed = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if entry.suffix not in (".lp", ".tmp"):
            continue
        try:
            if entry.stat().st_mtime < limit:
                entry.unlink()
                removed += 1
        except OSError:
            pass
    return removed
