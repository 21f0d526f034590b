"""What a clean parse of one version's program found, kept in the disk cache, so that a load reads the files' bytes and parses nothing.

Parsing ~60 rule files through clingo's AST is most of a KB's load, and
the deciding paths (evaluate, batch, missing, what-if, serve) read nothing
of the parse: everything they need is derived from the KB's bytes and kept
in the disk cache by the KB's digest. What a load must know before its
first decision is only what depends on the parse: which libraries the
version includes, and where it declares them (they are files of its
program). That is this record:

- it is kept by :mod:`.diskcache` (authenticated with the per-user key, so
  a forged or damaged record is never used), keyed by a digest of the bytes
  of *every* rule file of the framework, its libraries folder included, and
  of the version, with their paths in the tree: any change to any of them
  is another key;
- it is written only for a parse with no error and no message: a program
  with an error, or that clingo's parser says anything about, is parsed on
  every load, so ``check`` and strict loads report exactly what they did;
- it holds only paths relative to the tree and places (line, column),
  checked against the files actually listed before it is used; anything
  unexpected is a miss, and the program is parsed.

A load that uses a record parses the same bytes it read (never the files
again) the first time something reads its statements (:mod:`.base`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from .layout import display_path
from .parse import Parsed, read_rule_file
from .tree_files import TreeFileError

KIND = "parse"
FORMAT = 1


@dataclass(frozen=True)
class Included:
    """A library the version includes, and where it declares it (a file of the version, its line and column)."""

    library: Path
    declared_in: Path
    line: int
    column: int


def read_files(files: Sequence[Path], root: Path) -> Optional[dict[Path, bytes]]:
    """The bytes of every file, read as the parser reads them; None when one cannot be read (the parse then says why)."""
    out: dict[Path, bytes] = {}
    for file in files:
        try:
            out[file] = read_rule_file(file, root)
        except TreeFileError:
            return None
    return out


def _rel(file: Path, root: Path) -> str:
    return os.path.relpath(file, root).replace(os.sep, "/")


def files_digest(data: dict[Path, bytes], root: Path) -> str:
    """A digest of every file read (its path in the tree and its bytes), in the order given."""
    h = hashlib.sha256()
    for file, raw in data.items():
        h.update(_rel(file, root).encode() + b"\0" + hashlib.sha256(raw).digest())
    return h.hexdigest()


def record_of(parsed: Parsed, own: Sequence[Path], libraries: dict[str, Path], root: Path) -> Optional[str]:
    """The record of a clean parse, as JSON; None when the parse is not clean (it is then never recorded)."""
    if parsed.errors or parsed.messages:
        return None
    names = {path: name for name, path in libraries.items()}
    own_by_shown = {display_path(f): f for f in own}
    rows = []
    for library in parsed.libraries:
        name = names.get(library)
        where = parsed.included.get(display_path(library))
        if name is None or where is None or where[0] not in own_by_shown:
            return None
        rows.append([name, _rel(own_by_shown[where[0]], root), where[1], where[2]])
    return json.dumps({"format": FORMAT, "libraries": rows}, separators=(",", ":"))


def read_record(text: str, own: Sequence[Path], libraries: dict[str, Path], root: Path) -> Optional[list[Included]]:
    """The libraries a record says the version includes, checked against the files listed; None for anything unexpected."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("libraries"), list):
        return None
    own_by_rel = {_rel(f, root): f for f in own}
    out: list[Included] = []
    seen: set[str] = set()
    for row in record["libraries"]:
        if not (isinstance(row, list) and len(row) == 4 and isinstance(row[0], str) and isinstance(row[1], str)):
            return None
        name, declared, line, column = row
        if name in seen or name not in libraries or declared not in own_by_rel:
            return None
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (line, column)):
            return None
        seen.add(name)
        out.append(Included(libraries[name], own_by_rel[declared], line, column))
    return out
