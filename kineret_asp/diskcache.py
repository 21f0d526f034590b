"""A cache of program texts derived from a KB, kept between processes.

Rewriting a KB (for chunks of cases, or for the resident engine) walks its
syntax tree through clingo's AST API, about a tenth of a second: most of a
one-case command's start. The result depends only on the KB's text and the
versions of this package and clingo, so it is kept in a file named by a
hash of those, like Python's __pycache__. The folder is
``$KINERET_ASP_CACHE``, else ``$XDG_CACHE_HOME/kineret-asp``, else
``~/.cache/kineret-asp``; ``KINERET_ASP_CACHE=off`` turns the cache off. Any
problem with the cache (a read-only home, a damaged file) only means the
text is computed again.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

import clingo

FORMAT = "1"


def cache_dir() -> Optional[Path]:
    setting = os.environ.get("KINERET_ASP_CACHE")
    if setting is not None:
        return None if setting.lower() in ("", "off", "0", "no") else Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kineret-asp"


def cached_text(kind: str, digest: str, compute: Callable[[], str]) -> str:
    """The text for (kind, KB digest), from the cache or computed and stored."""
    from . import __version__

    folder = cache_dir()
    if folder is None:
        return compute()
    key = hashlib.sha256("\0".join([FORMAT, kind, digest, __version__, clingo.__version__]).encode()).hexdigest()
    path = folder / f"{kind}-{key[:32]}.lp"
    header = f"% kineret-asp cache {key}\n"
    try:
        text = path.read_text(encoding="utf-8")
        if text.startswith(header):
            return text[len(header):]
    except (OSError, UnicodeDecodeError):
        pass
    value = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False, suffix=".tmp") as tmp:
            tmp.write(header + value)
        os.replace(tmp.name, path)
    except OSError:
        pass
    return value
