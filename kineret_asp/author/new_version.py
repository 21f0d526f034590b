"""``kineret-asp new-version``: start the next version of a policy in one step.

A policy revision starts as a copy of the latest version (its rules,
tables, words, example cases and policy text) in a new folder named by its
effective-from date; the copy's ``effective_from`` is set to that date and
the previous version's period is closed the day before (``effective_to``),
so that every date of service still has exactly one version. ``check``,
``test`` and ``diff`` then work on the new version at once; the author
edits it from there, starting with the new policy's text in ``source/``
(until it is declared, ``check`` reports that the copy's text takes effect
on the old date).

The two dates are rewritten in place, in the files that declare them
(found through the KB's own parse, not by file name), so that the rest of
each file stays as the author wrote it.

The KB folder may not be trusted: the copy is built aside (a hidden folder
in the tree's root, where no command looks for versions) and moved into
place whole, so that a failure leaves nothing behind; links are copied as
links and never followed, and a link out of the tree, a link to nothing or
a special file stops the copy before anything is written
(:func:`~kineret_asp.knowledge.tree_files.copy_tree`).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..cases.versions import iso_date, near, shift
from ..errors import KineretError
from ..knowledge.base import KnowledgeBase, load_tree
from ..knowledge.layout import display_path
from ..knowledge.parse import Statement
from ..knowledge.tree_files import TreeFileError, copy_tree

START, END = "effective_from", "effective_to"  # what a version declares about its period (framework/versions.lp)
TEXT = "policy_source"  # where a version declares the policy's text it encodes (framework/source.lp)


class NewVersionError(KineretError):
    """A new version cannot be started as asked (bad date, unknown policy, a folder in the way)."""


@dataclass(frozen=True)
class NewVersion:
    """What ``new-version`` did: the new folder, and each date it wrote (file, line, fact)."""

    policy: str
    folder: Path
    copied_from: KnowledgeBase
    edits: tuple[tuple[Path, int, str], ...]
    text: Optional[tuple[Path, int]] = None  # where the copy declares the policy's text (still the old one)


def parse_date(text: str) -> datetime.date:
    """An ISO date YYYY-MM-DD, or NewVersionError."""
    date = iso_date(text)
    if date is None:
        raise NewVersionError(f"--effective: expected a date YYYY-MM-DD, got {text!r}")
    return date


def new_version(policy: str, effective: str, kb: Path | str | None = None) -> NewVersion:
    """Copy the latest version of ``policy`` to a folder effective ``effective``, and close the previous period."""
    parse_date(effective)
    tree = load_tree(kb)
    if policy not in tree.policies:
        known = list(tree.policies)
        raise NewVersionError(f"no policy {policy!r} in {display_path(tree.root)}; expected one of {', '.join(known)}{near(policy, known)}")
    latest = tree.latest(policy)
    ident = latest.identity
    if effective <= ident.effective_from:
        raise NewVersionError(f"a new version of {policy} must start after its latest version, which starts on {ident.effective_from}")
    last_day = shift(effective, -1)
    if ident.effective_to is not None and ident.effective_to < last_day:
        raise NewVersionError(f"{policy} {ident.effective_from} already ends on {ident.effective_to}: a version from {effective} would leave a gap; choose {shift(ident.effective_to, 1)}")
    folder = latest.path.parent / effective
    if folder.exists():
        raise NewVersionError(f"{display_path(folder)} already exists")
    first = _one_fact(latest, START)
    ends = latest.written(END)
    if len(ends) > 1:
        raise NewVersionError(f"{ends[1].file}:{ends[1].line}: a version states at most one {END} fact")
    end = ends[0] if ends else None
    if end is not None:
        _plain_fact(end, END)

    aside = Path(tempfile.mkdtemp(prefix=f".new-version-{effective}-", dir=tree.root))  # outside policies/: no command sees it as a version
    try:
        built = aside / effective
        try:
            copy_tree(latest.path, built, tree.root)
        except TreeFileError as exc:
            raise NewVersionError(f"{exc}; nothing was written") from None
        except OSError as exc:
            raise NewVersionError(f"{display_path(latest.path)}: cannot copy: {exc.strerror or exc}; nothing was written") from None
        copied = built / latest.file_of(first).relative_to(latest.path)
        line_start = (folder / copied.relative_to(built), first.line, _set_date(copied, first.line, START, effective))
        if end is not None:  # the copy is open-ended: a later version closes it
            _drop_line(built / latest.file_of(end).relative_to(latest.path), end.line)
            closing = _set_end(latest, end, last_day)
        else:
            closing = _add_end(latest, first, last_day, effective)
        try:
            os.rename(built, folder)  # the new version appears whole, or not at all
        except OSError as exc:
            raise NewVersionError(f"{display_path(folder)}: cannot create: {exc.strerror or exc}; nothing was written") from None
        try:
            _write(*closing[:2], through_link=True)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise NewVersionError(f"{display_path(closing[0])}: cannot write: {exc.strerror or exc}; nothing was written") from None
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    edits = [line_start, (closing[0], closing[2], closing[3])]
    declared = latest.written(TEXT)
    text = (folder / latest.file_of(declared[0]).relative_to(latest.path), declared[0].line) if declared else None
    return NewVersion(policy, folder, latest, tuple(edits), text)


def _write(path: Path, text: str, through_link: bool = False) -> None:
    """Write a file whole (a new file moved over the old): a link in a copy is replaced, never written through.

    ``through_link``: the file a link leads to is written instead (a file of
    the previous version shared through a link stays shared).
    """
    target = Path(os.path.realpath(path)) if through_link else path
    fd, tmp = tempfile.mkstemp(prefix=".new-version-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        except OSError:
            pass
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _one_fact(kb: KnowledgeBase, name: str) -> Statement:
    found = kb.written(name)
    if len(found) != 1:
        raise NewVersionError(f'{display_path(kb.path)}: expected one {name}("YYYY-MM-DD") fact, found {len(found)}')
    return _plain_fact(found[0], name)


def _plain_fact(statement: Statement, name: str) -> Statement:
    """A fact ``name("YYYY-MM-DD").`` on one line: the only form rewritten in place."""
    node = statement.node
    if node.body or node.location.begin.line != node.location.end.line:
        raise NewVersionError(f'{statement.file}:{statement.line}: write {name} as one fact on one line, {name}("YYYY-MM-DD"), so that new-version can set it')
    return statement


def _set_date(path: Path, line: int, name: str, date: str) -> str:
    """Set the date of the fact ``name("...")`` on a line of a file of the new copy; returns the fact as written."""
    text, fact = _dated(path, line, name, date)
    _write(path, text)
    return fact


def _dated(path: Path, line: int, name: str, date: str) -> tuple[str, str]:
    """A file's text with the date of the fact ``name("...")`` on a line set, and the fact as written."""
    lines = path.read_text(encoding="utf-8").split("\n")
    pattern = re.compile(rf'\b{name}\(\s*"[^"]*"\s*\)')
    fact = f'{name}("{date}")'
    new, count = pattern.subn(fact, lines[line - 1], count=1)
    if not count:
        raise NewVersionError(f'{display_path(path)}:{line}: expected {name}("YYYY-MM-DD") on this line')
    lines[line - 1] = new
    return "\n".join(lines), fact + "."


def _drop_line(path: Path, line: int) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    del lines[line - 1]
    _write(path, "\n".join(lines))


def _set_end(kb: KnowledgeBase, end: Statement, last_day: str) -> tuple[Path, str, int, str]:
    """Where and how the previous version's period is closed: (file, its new text, line, fact); nothing written yet."""
    path = kb.file_of(end)
    text, fact = _dated(path, end.line, END, last_day)
    return (path, text, end.line, fact)


def _add_end(kb: KnowledgeBase, first: Statement, last_day: str, effective: str) -> tuple[Path, str, int, str]:
    """Close a version's period: a paragraph after the one declaring its start (with the § comment check asks for); nothing written yet."""
    path = kb.file_of(first)
    lines = path.read_text(encoding="utf-8").split("\n")
    at = first.node.location.end.line  # 1-based line of the fact; find the end of its paragraph
    while at < len(lines) and lines[at].strip():
        at += 1
    fact = f'{END}("{last_day}").'
    paragraph = [
        "",
        '% § Header - "Effective Date": this version is in force until the day',
        f"% before the version effective {effective} replaces it.",
        fact,
    ]
    lines[at:at] = paragraph
    return (path, "\n".join(lines), at + len(paragraph), fact)


def render(result: NewVersion) -> str:
    """What new-version did, one line per step, and the policy's versions now."""
    old = result.copied_from.identity
    lines = [f"new version {display_path(result.folder)} (a copy of {old.effective_from})"]
    lines += [f"  {display_path(path)}:{line}: {fact}" for path, line, fact in result.edits]
    tree = load_tree(result.folder)
    periods = ", ".join(kb.identity.period for kb in tree.policies.get(result.policy, ()))
    lines.append(f"{result.policy} versions: {periods}")
    if result.text is not None:
        path, line = result.text
        lines.append(f"next: put the new policy's text in {display_path(result.folder / 'source')}/ and declare it at {display_path(path)}:{line} (until then check reports the old text's date)")
    return "\n".join(lines) + "\n"
