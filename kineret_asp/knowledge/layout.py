"""Where a KB's files are: the tree's folders (framework, policies, versions, libraries), the rule files in a stable order, paths as users see them.

A KB tree is a folder holding ``framework/`` (the machinery every policy
shares: how criteria combine, the decision, the case format, the libraries a
version may include) and ``policies/<ID>/<effective-from>/`` (one folder per
version of a policy). Folders named ``cases`` and ``source`` inside a version
hold example cases and the policy's text, never rules.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import Diagnostic, KbError

FRAMEWORK = "framework"
POLICIES = "policies"
CASES = "cases"  # the folder of a version that holds its example cases
NOT_RULES = (CASES, "source")  # folders of a version that hold no rules
LIBRARY = "library"  # framework/library/: pieces of policy a version includes by declaring library(Name)
LIBRARY_DECLARATION = "library"  # the fact library(Name) that includes framework/library/<Name>.lp


def default_kb_path() -> Path:
    """The KB shipped with the package: ``kineret_asp/kb`` when installed, ``kb/`` of a source tree."""
    here = Path(__file__).resolve().parent.parent  # the package
    for candidate in (here / "kb", here.parent / "kb"):
        if (candidate / FRAMEWORK).is_dir():
            return candidate
    from importlib import resources  # only here: importing it is a tenth of a one-case command's imports

    try:
        packaged = Path(str(resources.files("kineret_asp.kb")))
        if packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, TypeError):
        pass
    return here / "kb"


def display_path(path: Path | str) -> str:
    """A path as users wrote it: relative below the working folder, absolute elsewhere."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def kb_shown(root: Path | str) -> str:
    """A KB folder as outputs name it: the packaged KB relative to the project that ships it (``kb``), any other as :func:`display_path` writes it.

    No record, message or page carries the absolute path of the installed
    KB (it says nothing to a reader elsewhere, and it made outputs differ
    from one machine to the next).
    """
    packaged = default_kb_path()
    try:
        if Path(root).resolve() == packaged.resolve():
            return Path(os.path.relpath(packaged, Path(__file__).resolve().parent.parent.parent)).as_posix()
    except (OSError, ValueError):
        pass
    return display_path(root)


def rule_files(folder: Path) -> list[Path]:
    """The ``.lp`` files of a framework or version folder, in a stable order (cases and sources left out)."""
    return [folder.joinpath(*parts) for parts, _ in _rule_entries(folder)]


def framework_rule_files(framework: Path) -> list[Path]:
    """The framework's files every version loads: all but its library, which a version includes by declaration."""
    return [f for f in rule_files(framework) if f.relative_to(framework).parts[0] != LIBRARY]


def library_files(framework: Path) -> dict[str, Path]:
    """The framework's libraries by name: ``framework/library/<name>.lp``."""
    folder = framework / LIBRARY
    return {f.stem: f for f in rule_files(folder) if f.parent == folder} if folder.is_dir() else {}


def _rule_entries(folder: Path) -> list[tuple[tuple[str, ...], os.DirEntry]]:
    """The rule files below a folder as (path parts, directory entry), sorted by their parts.

    One ``scandir`` per folder, without pathlib's per-path parsing: every
    ``evaluate`` with a KB folder walks the folder to notice an edited file,
    and a ``rglob`` walk took half of a warm decision's time. Folders that
    hold no rules are not entered; links to folders are not followed (a link
    cannot loop). A file named ``.lp`` that is a link or not a regular file
    is listed: reading it (:func:`parse_files`) says whether it may be read.
    """
    out: list[tuple[tuple[str, ...], os.DirEntry]] = []

    def walk(directory: str, parts: tuple[str, ...]) -> None:
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except (PermissionError, FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in NOT_RULES:
                        walk(entry.path, (*parts, entry.name))
                elif entry.name.endswith(".lp"):  # a link or a special file too: the loader says what it is
                    out.append(((*parts, entry.name), entry))
            except OSError:
                continue

    walk(str(folder), ())
    out.sort(key=lambda item: item[0])
    return out


@dataclass(frozen=True)
class VersionFolder:
    """Where one version of a policy lives in a tree."""

    policy: str  # the policy folder's name (its id)
    name: str  # the version folder's name (its effective-from date)
    path: Path


def tree_root(path: Path) -> tuple[Path, Optional[Path]]:
    """The tree a folder belongs to, and the version folder when the folder is one."""
    if (path / FRAMEWORK).is_dir():
        return path, None
    for up in path.parents:
        if (up / FRAMEWORK).is_dir() and (up / POLICIES).is_dir() and POLICIES in path.relative_to(up).parts[:1]:
            rel = path.relative_to(up).parts
            if len(rel) >= 3:
                return up, up.joinpath(*rel[:3])
            return up, None
    return path, None


def version_folders(root: Path) -> list[VersionFolder]:
    """Every version folder of a tree: ``policies/<ID>/<version>/`` holding rule files."""
    return [folder for folder, _ in _versions_with_entries(root)]


def _versions_with_entries(root: Path) -> list[tuple[VersionFolder, list]]:
    """Every version folder of a tree with its rule files (see :func:`_rule_entries`)."""
    out = []
    policies = root / POLICIES
    if not policies.is_dir():
        return out
    for policy in sorted(p for p in policies.iterdir() if p.is_dir() and not p.is_symlink()):  # links to folders are not followed
        for version in sorted(v for v in policy.iterdir() if v.is_dir() and not v.is_symlink()):
            entries = _rule_entries(version)
            if entries:
                out.append((VersionFolder(policy.name, version.name, version), entries))
    return out


def _stats(entries: list) -> tuple:
    """Each rule file's path, modification time and size."""
    out = []
    for _, entry in entries:
        try:
            st = entry.stat()
        except OSError:  # a link to nothing: loading it says so
            st = entry.stat(follow_symlinks=False)
        out.append((entry.path, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def _check_folder(path: Path) -> None:
    where = display_path(path)
    if not path.exists():
        raise KbError([Diagnostic(where, 0, 0, "error", "KB folder does not exist")])
    if not path.is_dir():
        raise KbError([Diagnostic(where, 0, 0, "error", "KB path is not a folder")])
    if not os.access(path, os.R_OK | os.X_OK):
        raise KbError([Diagnostic(where, 0, 0, "error", "KB folder is not readable")])


def tree_digest(root: Path) -> str:
    """A hash of every file of a KB tree (names and contents): whether two trees hold the same KB.

    Links are hashed by where they lead, never followed; special files
    (FIFOs, devices) by their kind, never read.
    """
    import stat as stat_

    h = hashlib.sha256()
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            found.append(os.path.join(folder, name))
    for file in sorted(found):
        try:
            st = os.lstat(file)
            if stat_.S_ISLNK(st.st_mode):
                data = b"\0link " + os.readlink(file).encode("utf-8", "surrogateescape")
            elif stat_.S_ISREG(st.st_mode):
                with open(file, "rb") as handle:
                    data = handle.read()
            else:
                data = b"\0special"
        except OSError:
            data = b"\0unreadable"
        h.update(Path(os.path.relpath(file, root)).as_posix().encode("utf-8", "surrogateescape") + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()
