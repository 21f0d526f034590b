"""Loading a knowledge base: a tree of policy versions over a shared framework.

A KB tree is a folder holding ``framework/`` (the machinery every policy
shares: how criteria combine, the decision, the case format) and
``policies/<ID>/<effective-from>/`` (one folder per version of a policy: its
inputs, vocabulary, criteria, tables and words). The program that decides a
case under one version is the framework's files plus that version's files;
:class:`KnowledgeBase` is that program, parsed. Folders named ``cases`` and
``source`` inside a version hold example cases and the policy's text, never
rules.

Loading parses every file on its own so that all syntax errors are reported,
each as ``file:line:col``; then grounds the program once without a case and
reads the static facts that the rest of the package needs (schema,
vocabulary, criteria, words): Python never restates them.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import clingo.ast as ast

from ..asp.solving import MessageLog, new_control
from ..asp.symbols import Const, SymbolDecoder, Value
from ..errors import Diagnostic, KbChoiceError, KbError, did_you_mean
from ..memo import IdentityMemo, Memo
from ..templates import fill
from .names import NameIndex

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
    try:
        packaged = Path(str(resources.files("kineret_asp.kb")))
        if packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, TypeError):
        pass
    return here / "kb"


@dataclass(frozen=True)
class Statement:
    """One parsed statement with the program part it belongs to and its place."""

    part: str
    node: ast.AST
    file: str
    rank: int  # position among all statements of the program (files in load order)

    @property
    def line(self) -> int:
        return _LINES.of(self.node, lambda: self.node.location.begin.line)


_LINES = IdentityMemo(100_000)
"""Each statement's line, by node (read through clingo's AST, asked for again and again by check)."""


@dataclass(frozen=True)
class Criterion:
    """A criterion of the policy's outline: id, parent, how children combine, words."""

    id: str
    parent: Optional[str]
    rule: str
    text: str


@dataclass(frozen=True)
class VersionIdentity:
    """What a version says about itself: its policy, and the days it is in force."""

    policy: str
    title: str
    effective_from: str  # ISO date YYYY-MM-DD
    effective_to: Optional[str]  # the last day in force; None: until a later version replaces it

    def in_force(self, date: str) -> bool:
        """Whether the version is in force on an ISO date (string order is date order)."""
        return self.effective_from <= date and (self.effective_to is None or date <= self.effective_to)

    @property
    def period(self) -> str:
        """``2024-06-01..2024-12-31``, or ``2024-06-01..`` for a version with no end."""
        return f"{self.effective_from}..{self.effective_to or ''}"


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
class Vocabulary:
    """The static facts of a policy version that the package reads, from the KB itself.

    Nothing here is named by Python: vocabularies are keyed by the name the
    KB gives them (the ``V`` of ``key(V)``), words by their text/2 keys.
    """

    policy_id: str
    title: str
    drug_name: str
    effective_from: str
    effective_to: Optional[str]
    keys: dict[str, dict[str, str]]  # vocabulary -> key -> label, in declaration order
    nouns: dict[str, str]  # vocabulary -> "a drug"
    key_groups: dict[str, dict[str, tuple[str, ...]]]  # vocabulary -> group -> member keys
    group_names: dict[str, dict[str, str]]  # vocabulary -> group -> words
    criteria: dict[str, Criterion]  # in the policy's order
    children: dict[str, tuple[str, ...]]
    combinators: dict[str, str]
    reason_texts: dict[str, str]  # in the policy's order
    note_texts: dict[Value, str]
    words: dict[str, str]
    decision_texts: dict[str, str]
    route_texts: dict[str, str]
    names: dict[str, NameIndex] = field(default_factory=dict)  # vocabulary -> the names of its keys (key_name/3)
    undetermined_texts: dict[str, str] = field(default_factory=dict)  # kind -> the question that settles it

    def label(self, vocabulary: str, key: Any) -> str:
        """The words for a key (the key itself when the KB gives none)."""
        return self.keys.get(vocabulary, {}).get(str(key), str(key))

    def word(self, key: str, **values: Any) -> str:
        """A framework or policy text (text/2), with its {placeholders} filled in."""
        template = self.words.get(key, key)
        return fill(template, values)

    def counted(self, key: str, number: Any, /, **values: Any) -> str:
        """A text for a count: its ``KEY_one`` form when the count is one and the KB gives it ("1 month", "12 months")."""
        return self.word(f"{key}_one" if number == 1 and f"{key}_one" in self.words else key, **values)

    def criterion_rank(self) -> dict[str, int]:
        return {cid: i for i, cid in enumerate(self.criteria)}


class KnowledgeBase:
    """One policy version's program: the framework's files plus the version's.

    Use :func:`load_kb` (it caches). Everything derived from the KB (its
    schema, vocabulary, compiled programs, engines) is cached on the object
    itself, so it lives exactly as long as the KB does.
    """

    def __init__(
        self,
        path: Path,
        root: Path,
        files: list[Path],
        statements: list[Statement],
        comments: list[Statement],
        messages: list[Diagnostic],
        errors: list[Diagnostic],
        texts: dict[str, str],
        raw: Optional[dict[str, bytes]] = None,
        included: Optional[dict[str, tuple[str, int, int]]] = None,
    ):
        self.path = path  # the version folder
        self.root = root  # the tree's root folder
        self.files = files
        self.statements = statements
        self.comments = comments
        self.messages = messages
        self.errors = errors
        self.texts = texts
        self.raw = raw or {}  # the bytes of files whose text differs from them (see _hash)
        self.included = included or {}  # each library file the version includes (as shown) -> where it declares it
        self._lock = threading.RLock()
        self._derived: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"KnowledgeBase({display_path(self.path)!r})"

    def display_path(self, file: Path | str) -> str:
        return display_path(Path(file))

    def derived(self, name: str, make: Any) -> Any:
        """A value computed from this KB once (a compiled program, an engine), kept with it."""
        with self._lock:
            value = self._derived.get(name)
            if value is None:
                value = self._derived[name] = make()
            return value

    def part(self, name: str) -> list[Statement]:
        return [s for s in self.statements if s.part == name]

    @cached_property
    def framework_files(self) -> list[Path]:
        framework = self.root / FRAMEWORK
        return [f for f in self.files if framework in f.parents]

    @cached_property
    def version_files(self) -> list[Path]:
        return [f for f in self.files if f not in self.framework_files]

    @cached_property
    def static_model(self) -> list[tuple]:
        """Every atom of the program's base part grounded without a case, decoded, in the KB's order."""
        return self.ordered_model

    def _ground_static(self) -> list[tuple]:
        where = display_path(self.path)
        log = MessageLog(where)
        control = new_control([], log, message_limit=1000)
        try:
            control.add("base", [], self.part_text("base"))
            control.ground([("base", [])])
        except RuntimeError:
            raise KbError(log.errors() or [Diagnostic(where, 0, 0, "error", "the KB does not ground")]) from None
        decode = SymbolDecoder()
        atoms: list[tuple] = []
        result = control.solve(on_model=lambda m: atoms.extend(as_atom(decode(s)) for s in m.symbols(atoms=True)))
        if not result.satisfiable:
            raise KbError(self._failing_constraints())
        return atoms

    def part_text(self, name: str) -> str:
        """The statements of one program part, as clingo source text."""
        return "\n".join(str(s.node) for s in self.statements if s.part == name and s.node.ast_type != ast.ASTType.Program)

    def facts(self, name: str, arity: int) -> list[tuple]:
        """The arguments of every static atom name/arity, in the order the KB writes them."""
        return [a[1:] for a in self.ordered_model if a[0] == name and len(a) == arity + 1]

    @cached_property
    def ordered_model(self) -> list[tuple]:
        """The static model in the order the KB writes it (see :meth:`order_key`).

        Grounding the KB and ordering its facts is most of a one-case
        command's start, and depends only on the KB's files: the result is
        kept in the digest-checked disk cache.
        """
        import json

        from .diskcache import cached_text

        def compute() -> str:
            atoms = sorted(self._ground_static(), key=self.order_key)
            return json.dumps([_encode(a) for a in atoms], ensure_ascii=True, separators=(",", ":"))

        return [_decode(a) for a in json.loads(cached_text("static", self.digest, compute))]

    def order_key(self, atom: tuple) -> tuple:
        """Where an atom stands in the KB's own order.

        A fact written in the KB stands where it is written. An atom a rule
        derives stands where its first argument is first written (a table
        row's criterion id, an exclusion's id), and after those, in the
        order of its terms.
        """
        rank = self.declaration_rank.get(atom)
        if rank is not None:
            return (rank, "")
        first = self.first_written.get(atom[1]) if len(atom) > 1 else None
        return ((0, first) if first is not None else (1, 0), repr(atom))

    @cached_property
    def first_written(self) -> dict[Value, int]:
        """For every term an argument of a written fact holds, the rank where it first appears."""
        out: dict[Value, int] = {}
        for atom, (_, rank) in sorted(self.declaration_rank.items(), key=lambda kv: kv[1]):
            for arg in atom[1:]:
                out.setdefault(arg, rank)
        return out

    @cached_property
    def declaration_rank(self) -> dict[tuple, tuple[int, int]]:
        """Where each fact is written: its statement's rank (pools expanded), from one grounding."""
        lines = []
        for s in self.statements:
            if s.part != "base":
                continue
            fact = _fact_text(s.node)
            if fact:
                lines.append(f"decl__({s.rank}, {fact}).")
        rank: dict[tuple, tuple[int, int]] = {}
        decode = SymbolDecoder()
        try:
            control = new_control([], None)
            control.add("base", [], "\n".join(lines))
            control.ground([("base", [])])
        except RuntimeError:
            return rank
        found = sorted(((d[1], as_atom(d[2])) for d in (decode(atom.symbol) for atom in control.symbolic_atoms.by_signature("decl__", 2))), key=lambda ra: ra[0])
        for r, atom in found:
            rank.setdefault(atom, (0, r))
        return rank

    def _failing_constraints(self) -> list[Diagnostic]:
        """Which integrity constraints fail without a case, each at its position."""
        base = [s for s in self.part("base") if s.node.ast_type != ast.ASTType.Program]
        constraints = [s for s in base if s.node.ast_type == ast.ASTType.Rule and is_constraint(s.node)]
        lines = []
        for s in base:
            if s in constraints:
                i = constraints.index(s)
                lines.append(f"violated__({i}) :- {', '.join(str(b) for b in s.node.body)}.")
            else:
                lines.append(str(s.node))
        found: list[int] = []
        try:
            control = new_control([], None)
            control.add("base", [], "\n".join(lines))
            control.ground([("base", [])])
            control.solve(on_model=lambda m: found.extend(a.arguments[0].number for a in m.symbols(atoms=True) if a.name == "violated__"))
        except RuntimeError:
            pass
        out = []
        for i in sorted(set(found)):
            s = constraints[i]
            loc = s.node.location.begin
            out.append(Diagnostic(s.file, loc.line, loc.column, "error", f"integrity constraint fails with no case at all: {s.node}"))
        return out or [Diagnostic(display_path(self.path), 0, 0, "error", "the KB is inconsistent: it has no answer even without a case")]

    def _hash(self, files: Iterable[Path], base: Path) -> str:
        h = hashlib.sha256()
        for file in files:
            shown = display_path(file)
            data = self.raw.get(shown)
            h.update(os.path.relpath(file, base).replace(os.sep, "/").encode() + b"\0" + (data if data is not None else self.texts.get(shown, "").encode()) + b"\0")
        return h.hexdigest()

    @cached_property
    def rules_sha256(self) -> str:
        """A hash of the version's rule files (names relative to the version folder, and contents)."""
        return self._hash(self.version_files, self.path)

    @cached_property
    def framework_sha256(self) -> str:
        """A hash of the framework's rule files."""
        return self._hash(self.framework_files, self.root / FRAMEWORK)

    @cached_property
    def digest(self) -> str:
        """A hash of every file of the program: what derived programs depend on."""
        return hashlib.sha256(f"{self.framework_sha256}:{self.rules_sha256}".encode()).hexdigest()

    def written(self, name: str) -> list[Statement]:
        """The statements of the version's own files whose head is ``name(...)`` (facts and rules), in file order."""
        mine = {display_path(f) for f in self.version_files}
        out = []
        for s in self.statements:
            if s.file not in mine:
                continue
            head = rule_head(s.node)
            if head is not None and head.name == name:
                out.append(s)
        return out

    def defined_at(self, name: str) -> Optional[tuple[str, int, int]]:
        """Where the version defines ``name(...)``: its first own statement, else the declaration of a library it includes that does."""
        own = self.written(name)
        if own:
            loc = own[0].node.location.begin
            return (own[0].file, loc.line, loc.column)
        for s in self.statements:
            if s.file in self.included:
                head = rule_head(s.node)
                if head is not None and head.name == name:
                    return self.included[s.file]
        return None

    def file_of(self, statement: Statement) -> Path:
        """The file a statement was read from."""
        return next(f for f in self.files if display_path(f) == statement.file)

    @cached_property
    def folder(self) -> str:
        """The version folder relative to the tree's root (``policies/<ID>/<version>``), with ``/``."""
        return os.path.relpath(self.path, self.root).replace(os.sep, "/")

    @cached_property
    def identity(self) -> "VersionIdentity":
        """The policy id, title and effective period the version declares, read from the static model alone.

        Cheaper than :attr:`vocabulary` (no KB ordering), so that a tree can
        learn every version's period without building everything else.
        """
        where = display_path(self.path)

        def rows(name: str, arity: int) -> list[tuple]:
            return [a[1:] for a in self.static_model if a[0] == name and len(a) == arity + 1]

        def one(name: str, arity: int, what: str) -> tuple:
            found = rows(name, arity)
            if len(found) != 1:
                raise KbError([Diagnostic(where, 0, 0, "error", f"the KB must state exactly one {what} (found {len(found)})")])
            return found[0]

        pid, title = one("policy", 2, "policy(Id, Title) fact")
        (start,) = one("effective_from", 1, "effective_from(Date) fact")
        ends = rows("effective_to", 1)
        if len(ends) > 1:
            raise KbError([Diagnostic(where, 0, 0, "error", f"the KB must state at most one effective_to(Date) fact (found {len(ends)})")])
        return VersionIdentity(str(pid), str(title), str(start), str(ends[0][0]) if ends else None)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        return build_vocabulary(self)

    @cached_property
    def schema(self):
        from .schema import CaseSchema

        return CaseSchema.from_kb(self)


def _encode(value: Value) -> Any:
    """A decoded value as JSON: numbers as numbers, constants as strings, strings as ["", text], terms as [name, args...]."""
    if isinstance(value, tuple):
        return [value[0], *[_encode(v) for v in value[1:]]] if value[0] else ["()", *[_encode(v) for v in value[1:]]]
    if isinstance(value, Const):
        return str(value)
    if isinstance(value, str):
        return ["", value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        if value[0] == "":
            return value[1]
        name = "" if value[0] == "()" else value[0]
        return (name, *[_decode(v) for v in value[1:]])
    if isinstance(value, str):
        return Const(value)
    return value


@dataclass(frozen=True)
class Head:
    """What the package's walks read of a rule whose head is one atom ``name(args)``, read once.

    Reading a node through clingo's API costs a call per attribute, and
    ``check`` asks the same questions of every rule in several passes; nodes
    are shared between a KB and its edited copies (see :data:`_PARSED`).
    """

    symbol: Any  # the head's symbol (AST)
    name: str
    args: tuple  # the argument nodes
    fact: bool  # no body
    line: int
    column: int

    @cached_property
    def first_text(self) -> str:
        """The first argument as written, quotes stripped ("" when none)."""
        return str(self.args[0]).strip('"') if self.args else ""

    @cached_property
    def first_functor(self) -> Optional[str]:
        """The name of the first argument's term (``p`` of ``p(X)`` or of ``p``), when it has one."""
        if not self.args:
            return None
        first = self.args[0]
        if first.ast_type == ast.ASTType.Function:
            return first.name
        return str(first) if first.ast_type == ast.ASTType.SymbolicTerm else None


_HEADS = IdentityMemo(50_000)


def rule_head(node: ast.AST) -> Optional[Head]:
    """The head atom of a rule or fact whose head is one function atom (None for anything else)."""
    return _HEADS.of(node, lambda: (_read_head(node),))[0]  # kept in a tuple: None is an answer too


def _read_head(node: ast.AST) -> Optional[Head]:
    if node.ast_type != ast.ASTType.Rule:
        return None
    head = node.head
    if head.ast_type != ast.ASTType.Literal or head.atom.ast_type != ast.ASTType.SymbolicAtom:
        return None
    symbol = head.atom.symbol
    if symbol.ast_type != ast.ASTType.Function:
        return None
    begin = node.location.begin
    return Head(symbol, symbol.name, tuple(symbol.arguments), not node.body, begin.line, begin.column)


_FACT_TEXTS = IdentityMemo(50_000)
"""The atom text of each fact statement, by node: a KB edited in one file asks again about
the nodes it shares with the KB before the edit (see :data:`_PARSED`)."""


def _fact_text(node: ast.AST) -> str:
    """The atom a fact statement writes (``p(a,1)``), or "" for anything else."""
    return _FACT_TEXTS.of(node, lambda: _read_fact_text(node))


def _read_fact_text(node: ast.AST) -> str:
    if node.ast_type == ast.ASTType.Rule and not node.body:
        head = node.head
        if head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.SymbolicAtom:
            return str(head.atom.symbol)
    return ""


def as_atom(value: Value) -> tuple:
    return value if isinstance(value, tuple) else (str(value),)


def is_constraint(rule: ast.AST) -> bool:
    head = rule.head
    return head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.BooleanConstant and not head.atom.value


def _text(value: Value) -> str:
    return str(value)


_ROMAN_DIGITS = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}


def _roman(text: str) -> Optional[int]:
    """The value of a lower-case roman numeral (``iv`` 4), or None."""
    if not text or any(ch not in _ROMAN_DIGITS for ch in text):
        return None
    total = 0
    for ch, nxt in zip(text, text[1:] + " "):
        value = _ROMAN_DIGITS[ch]
        total += -value if value < _ROMAN_DIGITS.get(nxt, 0) else value
    return total


def outline_key(cid: str) -> tuple:
    """Where a criterion id stands among its siblings: its parts compared as the policy's outline numbers them.

    Each ``.``-separated part is a number (``3``, compared by value), a
    lower-case roman numeral (``iv``, by value), or anything else (``A``,
    ``R``, by its letters); numbers come first, then letters, then roman
    numerals. ``3.C.i`` < ``3.C.ii`` < ``3.C.x``; ``1`` < ``5`` < ``R``.
    """
    parts = []
    for part in cid.split("."):
        roman = _roman(part)
        if part.isdigit():
            parts.append((0, int(part), ""))
        elif roman is not None:
            parts.append((2, roman, ""))
        else:
            parts.append((1, 0, part))
    return tuple(parts)


def outline_order(criteria: dict[str, "Criterion"]) -> list[str]:
    """Criterion ids in the policy's outline: each parent before its children, siblings by :func:`outline_key`.

    The same order whether a criterion is written as a fact or derived by a
    rule (a table's rows), so that what lists criteria (a decision's tree,
    ``test --coverage``, ``what-if``, ``diff``) lists them as the policy
    does. A criterion whose parent is not a criterion is listed as a root.
    """
    kids: dict[Optional[str], list[str]] = {}
    for cid, c in criteria.items():
        parent = c.parent if c.parent in criteria and c.parent != cid else None
        kids.setdefault(parent, []).append(cid)
    out: list[str] = []
    seen: set[str] = set()

    def walk(parent: Optional[str]) -> None:
        for cid in sorted(kids.get(parent, ()), key=outline_key):
            if cid not in seen:
                seen.add(cid)
                out.append(cid)
                walk(cid)

    walk(None)
    out += [cid for cid in criteria if cid not in seen]  # a cycle of parents: as written
    return out


def build_vocabulary(kb: KnowledgeBase) -> Vocabulary:
    """Collect the static facts the package reads, checking the ones it needs."""
    where = display_path(kb.path)

    def one(name: str, arity: int, what: str) -> tuple:
        rows = kb.facts(name, arity)
        if len(rows) != 1:
            raise KbError([Diagnostic(where, 0, 0, "error", f"the KB must state exactly one {what} (found {len(rows)})")])
        return rows[0]

    pid, title = one("policy", 2, "policy(Id, Title) fact")
    (effective_from,) = one("effective_from", 1, "effective_from(Date) fact")
    ends = kb.facts("effective_to", 1)
    drug_names = kb.facts("policy_drug_name", 1)
    nouns = {str(v): str(n) for v, n in kb.facts("vocabulary", 2)}
    keys: dict[str, dict[str, str]] = {}
    for v in nouns:
        keys[v] = {}
        for row in kb.facts(v, 2):
            keys[v].setdefault(str(row[0]), str(row[1]))
    groups: dict[str, dict[str, list[str]]] = {}
    for v, g, k in kb.facts("key_group", 3):
        groups.setdefault(str(v), {}).setdefault(str(g), []).append(str(k))
    group_names: dict[str, dict[str, str]] = {}
    for v, g, n in kb.facts("key_group_name", 3):
        group_names.setdefault(str(v), {})[str(g)] = str(n)
    criteria: dict[str, Criterion] = {}
    for cid, parent, rule, text in kb.facts("criterion", 4):
        parent_id = None if parent == "none" else str(parent)
        rule_text = rule if isinstance(rule, str) else f"{rule[0]}({','.join(str(a) for a in rule[1:])})"
        criteria.setdefault(str(cid), Criterion(str(cid), parent_id, str(rule_text), str(text)))
    ordered = outline_order(criteria)
    children: dict[str, list[str]] = {}
    for cid in ordered:
        parent_id = criteria[cid].parent
        if parent_id is not None:
            children.setdefault(parent_id, []).append(cid)
    words: dict[str, str] = {}
    for key, text in kb.facts("text", 2):
        words[str(key)] = str(text)  # a policy's text, written after the framework's, wins
    names = name_indexes(kb, keys)
    return Vocabulary(
        policy_id=str(pid),
        title=str(title),
        drug_name=str(drug_names[0][0]) if drug_names else "",
        effective_from=str(effective_from),
        effective_to=str(ends[0][0]) if ends else None,
        keys=keys,
        nouns=nouns,
        key_groups={v: {g: tuple(m) for g, m in gs.items()} for v, gs in groups.items()},
        group_names=group_names,
        criteria={c: criteria[c] for c in ordered},
        children={k: tuple(v) for k, v in children.items()},
        combinators={str(c): str(t) for c, t in kb.facts("combinator", 2)},
        reason_texts={str(i): str(t) for i, t in kb.facts("reason_text", 2)},
        note_texts={kind: str(text) for kind, text in kb.facts("note_text", 2)},
        words=words,
        decision_texts={str(d): str(t) for d, t in kb.facts("decision_text", 2)},
        route_texts={str(r): str(t) for r, t in kb.facts("route_text", 2)},
        names=names,
        undetermined_texts={str(k): str(t) for k, t in kb.facts("undetermined_text", 2)},
    )


def name_indexes(kb: KnowledgeBase, keys: dict[str, dict[str, str]]) -> dict[str, NameIndex]:
    """The name index of every vocabulary that gives its keys other names (key_name/3), checked."""
    given: dict[str, list[tuple[str, str]]] = {}
    for v, k, n in kb.facts("key_name", 3):
        given.setdefault(str(v), []).append((str(k), str(n)))
    fillers: dict[str, list[str]] = {}
    for v, w in kb.facts("key_name_filler", 2):
        fillers.setdefault(str(v), []).append(str(w))
    numbers = {str(v) for (v,) in kb.facts("key_name_numbers", 1)}
    narrows: dict[str, list[tuple[str, str]]] = {}
    for v, a, b in kb.facts("key_narrows", 3):
        narrows.setdefault(str(v), []).append((str(a), str(b)))
    out: dict[str, NameIndex] = {}
    for v, rows in given.items():
        table = keys.get(v)
        if table is not None:  # rows naming no vocabulary, or no key of it, are `check`'s to report (check.key_name_problems)
            out[v] = NameIndex.build(table, [(k, n) for k, n in rows if k in table], fillers.get(v, ()), v in numbers, narrows.get(v, ()))
    return out


# --- parsing ------------------------------------------------------------------


@dataclass
class Parsed:
    statements: list[Statement] = field(default_factory=list)
    comments: list[Statement] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    messages: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)  # a file's bytes, where they are not its text in UTF-8 (CR line ends)
    libraries: list[Path] = field(default_factory=list)  # the library files the version includes, in the order it declares them
    included: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # each library file (as shown) -> where it is declared


_PARSED = Memo(512)
"""Syntax trees by file text. Parsing a text cleanly always gives the same
statements, and clingo's nodes are never changed in place (``update``
returns a copy): a KB copied or edited in one file shares the unchanged files'
nodes, and with them what is remembered by node (each rule's atoms), so
``check`` and a first decision of an edited KB walk only what changed.
Texts with messages are parsed each time (their messages name the file)."""


def _parse_text(text: str, shown: str) -> tuple[Optional[list], MessageLog]:
    """The nodes of one file's text (None when it does not parse), and the parser's messages."""
    known = _PARSED.get(text)
    if known is not None:
        return known, MessageLog(shown)
    log = MessageLog(shown)
    parsed: list[ast.AST] = []
    try:
        ast.parse_string(text, parsed.append, logger=log, message_limit=100)
    except RuntimeError:
        return None, log
    if not log.diagnostics:
        _PARSED.put(text, parsed)
    return parsed, log


def parse_files(files: Sequence[Path], root: Optional[Path] = None, libraries: Optional[dict[str, Path]] = None) -> Parsed:
    """Parse each file on its own (so every syntax error is reported), keeping places and comments.

    Files are read as :mod:`~kineret_asp.knowledge.tree_files` says: with ``root``, a
    link is followed only to a file inside that tree; only regular files are
    read; ``#include`` and ``#script`` are refused, one error each.

    With ``libraries`` (the framework's libraries by name), a fact
    ``library(Name)`` in one of ``files`` includes that library's file: its
    statements are read as if written at the declaration, so that its facts
    stand there in the KB's order (a field it declares stands there in the
    case schema). Each library is included once; a library includes none.
    """
    out = Parsed()
    reader = _Reader(out, root, libraries)
    for file in files:
        reader.read(file)
    return out


@dataclass
class _Reader:
    """Reads files into a :class:`Parsed`, numbering statements in load order, libraries where they are declared."""

    out: Parsed
    root: Optional[Path]
    libraries: Optional[dict[str, Path]]
    rank: int = 0
    included: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # library name -> where it is declared

    def read(self, file: Path, library: bool = False) -> None:
        from .tree_files import INCLUDE, TreeFileError, blank_includes, directives, line_col, read_tree_file

        out = self.out
        shown = display_path(file)
        if not os.access(file, os.R_OK):
            out.errors.append(Diagnostic(shown, 0, 0, "error", "file is not readable"))
            return
        try:
            data = read_tree_file(file, self.root)
        except TreeFileError as exc:
            out.errors.append(Diagnostic(shown, 0, 0, "error", str(exc)))
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.errors.append(Diagnostic(shown, 0, 0, "error", f"cannot read file: {exc}"))
            return
        text = text.replace("\r\n", "\n").replace("\r", "\n")  # as a text-mode read gives it
        out.texts[shown] = text
        if text.encode("utf-8") != data:
            out.raw[shown] = data  # hashed as read: every byte counts
        refused = [(kind, offset) for kind, offset, code in directives(text) if code]
        for kind, offset in refused:
            line, col = line_col(text, offset)
            why = "a KB is its folders' rule files: put the rules in a file of the KB, or link a file of the same tree" if kind == INCLUDE else "the package never runs scripts: write the rule in ASP"
            out.errors.append(Diagnostic(shown, line, col, "error", f"{kind} is not allowed in a KB ({why})", "directive"))
        parsed, log = _parse_text(blank_includes(text), shown)
        if parsed is None:
            out.errors.extend(_relocate(d, shown) for d in log.errors())
            if not log.errors():
                out.errors.append(Diagnostic(shown, 0, 0, "error", "parsing failed"))
            return
        out.messages.extend(_relocate(d, shown) for d in log.diagnostics)
        part = "base"
        for node in parsed:
            self.rank += 1
            if node.ast_type == ast.ASTType.Comment:
                out.comments.append(Statement(part, node, shown, self.rank))
                continue
            if node.ast_type == ast.ASTType.Script:
                if not refused:
                    loc = node.location.begin
                    out.errors.append(Diagnostic(shown, loc.line, loc.column, "error", "#script is not allowed in a KB (the package never runs scripts: write the rule in ASP)", "directive"))
                continue
            if node.ast_type == ast.ASTType.Program:
                part = node.name
            out.statements.append(Statement(part, node, shown, self.rank))
            if self.libraries is not None:
                self._include(node, shown, library)

    def _include(self, node: ast.AST, shown: str, within_library: bool) -> None:
        """Read the library a ``library(Name)`` fact declares, there and then."""
        head = rule_head(node)
        if head is None or not head.fact or head.name != LIBRARY_DECLARATION or len(head.args) != 1:
            return
        assert self.libraries is not None
        where = (shown, head.line, head.column)
        name = _constant(head.args[0])
        known = sorted(self.libraries)
        listed = ", ".join(known) or "none"
        if within_library:
            self.out.errors.append(Diagnostic(*where, "error", f"a library includes no library: the version that includes this one declares library({head.first_text}) itself", "library"))
        elif name is None:
            self.out.errors.append(Diagnostic(*where, "error", f"library/1 names a library of framework/{LIBRARY}/ by its file's name, library(name); the libraries: {listed}", "library"))
        elif name not in self.libraries:
            self.out.errors.append(Diagnostic(*where, "error", f"no library {name}: framework/{LIBRARY}/ holds {listed}{did_you_mean(name, known)}", "library"))
        elif name in self.included:
            first = self.included[name]
            self.out.errors.append(Diagnostic(*where, "error", f"library({name}) is declared twice: it is included once, at {first[0]}:{first[1]}", "library"))
        else:
            self.included[name] = where
            self.out.libraries.append(self.libraries[name])
            self.out.included[display_path(self.libraries[name])] = where
            self.read(self.libraries[name], library=True)


def _constant(term: ast.AST) -> Optional[str]:
    """The name a term is, when it is a plain constant (``samples``), else None."""
    if term.ast_type == ast.ASTType.Function and not term.arguments and not term.external and term.name:
        return term.name
    if term.ast_type == ast.ASTType.SymbolicTerm and str(term.symbol).isidentifier() and term.symbol.type.name == "Function":
        return str(term.symbol)
    return None


def _relocate(diag: Diagnostic, shown: str) -> Diagnostic:
    """Messages from parse_string name ``<string>``: give them the file's name."""
    if diag.file in ("<string>", "<kb>", ""):
        return Diagnostic(shown, diag.line, diag.column, diag.severity, diag.message, diag.code)
    return diag


# --- trees and versions ---------------------------------------------------------


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


def parse_version(root: Path, version: Path, strict: bool = True) -> KnowledgeBase:
    """Parse the framework's files and one version's files as one program."""
    framework = root / FRAMEWORK
    if not framework.is_dir():
        raise KbError([Diagnostic(display_path(root), 0, 0, "error", f"not a KB tree: no {FRAMEWORK}/ folder")])
    own = rule_files(version)
    if not own:
        raise KbError([Diagnostic(display_path(version), 0, 0, "error", "the version folder holds no .lp file")])
    common = framework_rule_files(framework)
    parsed = _parse_program(common, own, root, library_files(framework))
    if parsed.errors and strict:
        raise KbError(parsed.errors)
    files = common + own + parsed.libraries
    return KnowledgeBase(version, root, files, parsed.statements, parsed.comments, parsed.messages, parsed.errors, parsed.texts, parsed.raw, parsed.included)


def _parse_program(common: Sequence[Path], own: Sequence[Path], root: Path, libraries: dict[str, Path]) -> Parsed:
    """The framework's files, then the version's, each library it declares read at its declaration."""
    out = Parsed()
    plain = _Reader(out, root, None)
    for file in common:
        plain.read(file)
    reader = _Reader(out, root, libraries, rank=plain.rank)
    for file in own:
        reader.read(file)
    return out


def parse_kb(path: Path, strict: bool = True) -> KnowledgeBase:
    """Parse the program of a version folder, or of the latest version of a tree with one policy.

    With ``strict`` (the default) any syntax error raises :class:`KbError`
    listing them all; otherwise the errors are kept in ``kb.errors`` (for
    ``check``).
    """
    _check_folder(path)
    root, version = tree_root(path.resolve())
    if version is None:
        versions = version_folders(root)
        if not versions:
            raise KbError([Diagnostic(display_path(path), 0, 0, "error", f"not a KB: no {FRAMEWORK}/ folder and no {POLICIES}/<ID>/<version>/ folder with .lp files")])
        policies = sorted({v.policy for v in versions})
        if len(policies) > 1:
            raise KbError([Diagnostic(display_path(path), 0, 0, "error", f"the KB holds several policies ({', '.join(policies)}): name a version folder")])
        version = versions[-1].path
    return parse_version(root, version, strict)


_CACHE: dict[tuple, KnowledgeBase] = {}
_CACHE_LOCK = threading.Lock()


def _fingerprint(root: Path, version: Path) -> tuple:
    """Each rule file's path, modification time and size: a cached KB is used while these stay the same."""
    try:
        return _stats(_rule_entries(root / FRAMEWORK)) + _stats(_rule_entries(version))
    except OSError:
        return ()


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        return ""


def load_kb(path: Path | str | None = None, *, policy: Optional[str] = None, version: Optional[str] = None) -> KnowledgeBase:
    """Load (and cache) one version's program; which one is :func:`choose_version`'s answer.

    ``path`` is a KB tree (default: the packaged KB) or one version's
    folder. In a tree, ``policy`` names the policy (default: the tree's only
    one) and ``version`` its version: the effective-from date that names a
    version folder, or any date (the version in force on it); by default the
    latest. This is where no case is involved (``verify``, ``trace``,
    ``schema``, ``vocabulary``); where a case is decided, the version is the
    one its date of service chooses (:mod:`kineret_asp.cases.versions`).
    """
    return choose_version(path, policy=policy, version=version).kb


@dataclass(frozen=True)
class VersionChoice:
    """The version a command without a case uses, and how it was chosen (printed beside its output)."""

    kb: KnowledgeBase
    how: str  # "folder": a version folder was given; "latest"; "named": --version named it; "in_force": in force on --version
    policy: str  # the policy folder's name
    on: Optional[str] = None  # the date --version gave


def choose_version(path: Path | str | None = None, *, policy: Optional[str] = None, version: Optional[str] = None) -> VersionChoice:
    """The version of a KB a command without a case uses: the same default everywhere.

    A version folder is used as it is (``policy`` and ``version``, when
    given, must name it). In a tree: the policy ``policy`` names (needed
    when the tree holds several), and its version named by ``version`` (a
    version folder's effective-from date, or a date the version is in force
    on), else its latest version. Raises :class:`KbChoiceError` (one line,
    naming what to pass) when the choice cannot be made.
    """
    folder = Path(path) if path is not None else default_kb_path()
    _check_folder(folder)
    root, given = tree_root(folder.resolve())
    if given is None and not version_folders(root):  # a single folder that is not a tree
        if policy is not None or version is not None:
            raise KbChoiceError(f"{display_path(folder)} is one KB folder, not a tree of policies and versions: --policy and --version name versions of a tree")
        return VersionChoice(_load_version(root, parse_kb(folder).path), "folder", "")
    folders = version_folders(root)
    if given is not None:
        named = next((f for f in folders if f.path == given), None)
        if named is not None and ((policy is not None and policy != named.policy) or (version is not None and version != named.name)):
            raise KbChoiceError(f"{display_path(folder)} is the folder of {named.policy} {named.name}: --policy and --version, when given with a version folder, name that version")
        return VersionChoice(_load_version(root, given), "folder", named.policy if named else "")
    policies = sorted({f.policy for f in folders})
    if policy is None:
        if len(policies) > 1:
            raise KbChoiceError(f"the KB holds several policies ({', '.join(policies)}): pass --policy with one of them")
        policy = policies[0]
    elif policy not in policies:
        raise KbChoiceError(f"no policy {policy!r} in {display_path(folder)}; expected one of {', '.join(policies)}{did_you_mean(policy, policies)}")
    own = [f for f in folders if f.policy == policy]  # oldest first: folders are named by their effective-from date
    if version is None:
        return VersionChoice(_load_version(root, own[-1].path), "latest", policy)
    exact = next((f for f in own if f.name == version), None)
    if exact is not None:
        return VersionChoice(_load_version(root, exact.path), "named", policy, version)
    if not _ISO_DATE.fullmatch(version):
        raise KbChoiceError(f"--version: expected a date YYYY-MM-DD (a version's effective-from date, or a day it is in force), got {version!r}; {policy}'s versions: {', '.join(f.name for f in own)}")
    for f in reversed(own):
        kb = _load_version(root, f.path)
        if kb.identity.in_force(version):
            return VersionChoice(kb, "in_force", policy, version)
    periods = ", ".join(_load_version(root, f.path).identity.period for f in own)
    raise KbChoiceError(f"--version: no version of {policy} is in force on {version}; its versions: {periods}")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _load_version(root: Path, version: Path) -> KnowledgeBase:
    """Load (and cache) the program of one version folder of a tree."""
    key = (str(root), str(version), _fingerprint(root, version), _cwd())  # messages name files relative to the working folder
    with _CACHE_LOCK:
        cached = _CACHE.pop(key, None)
        if cached is not None:
            _CACHE[key] = cached  # most recently used last
    if cached is not None:
        return cached
    kb = parse_version(root, version)
    kb.vocabulary  # ground once: a KB that does not ground is reported now
    with _CACHE_LOCK:
        while len(_CACHE) >= 16:  # the least recently loaded goes first
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = kb
    return kb


def resolve_kb(kb: "KnowledgeBase | Path | str | None") -> KnowledgeBase:
    """Accept a KB object, a folder, or None (the packaged KB)."""
    if isinstance(kb, KnowledgeBase):
        return kb
    return load_kb(kb)


# --- a tree of policies and versions ----------------------------------------------


class KbTree:
    """Every policy and every version of a KB tree side by side, over one framework.

    Use :func:`load_tree` (it caches). Each version is loaded with
    :func:`load_kb`, so a version loaded through the tree and one loaded by
    its folder share their parse and engines while both caches hold them.
    """

    def __init__(self, root: Path, folders: Sequence[VersionFolder]):
        self.root = root
        self.folders = tuple(folders)

    def __repr__(self) -> str:
        return f"KbTree({display_path(self.root)!r})"

    @cached_property
    def versions(self) -> tuple[KnowledgeBase, ...]:
        """Every version, loaded (a broken one raises KbError)."""
        return tuple(load_kb(f.path) for f in self.folders)

    @cached_property
    def policies(self) -> dict[str, tuple[KnowledgeBase, ...]]:
        """The versions of each policy (by the id they declare), oldest first."""
        out: dict[str, list[KnowledgeBase]] = {}
        for kb in self.versions:
            out.setdefault(kb.identity.policy, []).append(kb)
        return {pid: tuple(sorted(kbs, key=lambda k: (k.identity.effective_from, k.folder))) for pid, kbs in sorted(out.items())}

    def latest(self, policy: str) -> KnowledgeBase:
        """The version of a policy with the latest effective-from date."""
        return self.policies[policy][-1]

    def holding(self, path: Path) -> Optional[KnowledgeBase]:
        """The version whose folder holds a file (an example case under its ``cases/``), if any."""
        try:
            resolved = path.resolve()
        except OSError:
            return None
        for folder in self.folders:
            if folder.path == resolved or folder.path in resolved.parents:
                return load_kb(folder.path)
        return None

    @cached_property
    def framework_sha256(self) -> str:
        """The framework's hash (the same in every version's program)."""
        return self.versions[0].framework_sha256 if self.versions else ""


_TREES: dict[tuple, KbTree] = {}


def load_tree(path: Path | str | None = None) -> KbTree:
    """Load (and cache) the tree a folder belongs to: every policy and version in it.

    A version folder gives the tree that holds it. The tree is loaded again
    when a rule file is added, removed or changed.
    """
    folder = Path(path) if path is not None else default_kb_path()
    _check_folder(folder)
    root, _ = tree_root(folder.resolve())
    if not (root / FRAMEWORK).is_dir():
        raise KbError([Diagnostic(display_path(folder), 0, 0, "error", f"not a KB tree: no {FRAMEWORK}/ folder")])
    found = _versions_with_entries(root)
    if not found:
        raise KbError([Diagnostic(display_path(folder), 0, 0, "error", f"not a KB: no {POLICIES}/<ID>/<version>/ folder with .lp files")])
    folders = [f for f, _ in found]
    try:  # the framework's files and each version's, each folder walked once
        key = (str(root), _stats(_rule_entries(root / FRAMEWORK)), tuple((f.path, _stats(entries)) for f, entries in found), _cwd())
    except OSError:
        key = (str(root), (), tuple((f.path, ()) for f in folders), _cwd())
    with _CACHE_LOCK:
        cached = _TREES.get(key)
    if cached is not None:
        return cached
    tree = KbTree(root, folders)
    with _CACHE_LOCK:
        if len(_TREES) > 16:
            _TREES.clear()
        _TREES[key] = tree
    return tree


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
