"""The knowledge base: one version's program (the framework's files and the version's, parsed), what it states without a case, and the loaded KBs kept.

:class:`KnowledgeBase` is that program; loading grounds it once without a
case and reads the static facts the rest of the package needs (schema,
vocabulary, criteria, words). Cache discipline: what is derived from one
loaded KB is kept by that KB (:meth:`KnowledgeBase.derived`, its cached
properties) and goes with it; the loaded KBs themselves are kept here, by
their files' paths, times and sizes (at most 16, least recently loaded
first), and the trees by the same; parse records are kept per file
(:mod:`.parse`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import clingo.ast as ast

from ..asp.solving import MessageLog, new_control
from ..asp.symbols import Const, SymbolDecoder, Value
from ..errors import Diagnostic, KbChoiceError, KbError, did_you_mean
from .layout import (
    FRAMEWORK,
    POLICIES,
    VersionFolder,
    _check_folder,
    _rule_entries,
    _stats,
    _versions_with_entries,
    default_kb_path,
    display_path,
    framework_rule_files,
    library_files,
    rule_files,
    tree_root,
    version_folders,
)
from .parse import Parsed, Statement, as_atom, fact_text, is_constraint, parse_program, rule_head, rule_text
from .parse_record import Included, files_digest, read_files, read_record, record_of
from .vocabulary import Vocabulary, build_vocabulary


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
        statements: Optional[list[Statement]],
        comments: Optional[list[Statement]],
        messages: list[Diagnostic],
        errors: list[Diagnostic],
        texts: dict[str, str],
        raw: Optional[dict[str, bytes]] = None,
        included: Optional[dict[str, tuple[str, int, int]]] = None,
        parse: Optional[Callable[[], Parsed]] = None,
    ):
        self.path = path  # the version folder
        self.root = root  # the tree's root folder
        self.files = files
        self.messages = messages
        self.errors = errors
        self.texts = texts
        self.raw = raw or {}  # the bytes of files whose text differs from them (see _hash)
        self.included = included or {}  # each library file the version includes (as shown) -> where it declares it
        self._lock = threading.RLock()
        self._derived: dict[str, Any] = {}
        self._parse = parse  # how the statements are read, when they were not read at load (see parse_version)
        self._parsed: Optional[tuple[list[Statement], list[Statement]]] = None
        if statements is not None and comments is not None:
            self._parsed = (statements, comments)
        elif parse is None:
            raise ValueError("a KnowledgeBase needs its statements, or a way to parse them")

    @property
    def statements(self) -> list[Statement]:
        """Every statement of the program (comments apart), in load order; parsed on first read for a KB loaded from a parse record."""
        return self._statements_and_comments()[0]

    @property
    def comments(self) -> list[Statement]:
        """Every comment of the program, in load order (parsed on first read, as :attr:`statements`)."""
        return self._statements_and_comments()[1]

    @property
    def parsed(self) -> bool:
        """Whether the program's statements have been read: at load, or (loaded from a parse record) since something read them."""
        return self._parsed is not None

    def _statements_and_comments(self) -> tuple[list[Statement], list[Statement]]:
        got = self._parsed
        if got is not None:
            return got
        with self._lock:  # KBs are shared by a server's threads: one parse
            if self._parsed is None:
                assert self._parse is not None
                parsed = self._parse()
                if parsed.errors or parsed.messages or parsed.included != self.included:  # the same bytes as the clean parse recorded: never expected
                    raise KbError(parsed.errors or [Diagnostic(display_path(self.path), 0, 0, "error", "the KB's files do not parse as their record says: load the KB again")])
                self._parsed = (parsed.statements, parsed.comments)
                self._parse = None
            return self._parsed

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
        return list(self._facts_by_signature.get((name, arity), ()))

    @cached_property
    def _facts_by_signature(self) -> dict[tuple[str, int], list[tuple]]:
        """The static model's atoms' arguments by name/arity, in the KB's order: a vocabulary and a schema ask for some forty predicates."""
        out: dict[tuple[str, int], list[tuple]] = {}
        for a in self.ordered_model:
            out.setdefault((a[0], len(a) - 1), []).append(a[1:])
        return out

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
            fact = fact_text(s.node)
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


def parse_version(root: Path, version: Path, strict: bool = True) -> KnowledgeBase:
    """Parse the framework's files and one version's files as one program.

    The files are read first; when the disk cache holds the record of a
    clean parse of exactly these bytes (:mod:`.parse_record`), the KB is
    made from them without parsing, and parses the same bytes the first time
    something reads its statements. Otherwise they are parsed now, and a
    clean parse is recorded.
    """
    from . import diskcache
    from .parse_record import KIND

    framework = root / FRAMEWORK
    if not framework.is_dir():
        raise KbError([Diagnostic(display_path(root), 0, 0, "error", f"not a KB tree: no {FRAMEWORK}/ folder")])
    own = rule_files(version)
    if not own:
        raise KbError([Diagnostic(display_path(version), 0, 0, "error", "the version folder holds no .lp file")])
    common = framework_rule_files(framework)
    libraries = library_files(framework)
    data = read_files([*common, *libraries.values(), *own], root)
    key = files_digest(data, root) if data is not None else None
    if data is not None and key is not None:
        text = diskcache.lookup(KIND, key)
        included = read_record(text, own, libraries, root) if text is not None else None
        if included is not None:
            kb = _from_record(root, version, common, own, libraries, included, data)
            if kb is not None:
                return kb
    parsed = parse_program(common, own, root, libraries, preread=data)
    if parsed.errors and strict:
        raise KbError(parsed.errors)
    if key is not None:
        record = record_of(parsed, own, libraries, root)
        if record is not None:
            diskcache.store(KIND, key, record)
    files = common + own + parsed.libraries
    return KnowledgeBase(version, root, files, parsed.statements, parsed.comments, parsed.messages, parsed.errors, parsed.texts, parsed.raw, parsed.included)


def _from_record(root: Path, version: Path, common: list[Path], own: list[Path], libraries: dict[str, Path], included: list[Included], data: dict[Path, bytes]) -> Optional[KnowledgeBase]:
    """A version's program made from its files' bytes and the record of their clean parse, its statements parsed on first read (None: parse now)."""
    order = list(common)  # the order a parse reads the files in: a library where the version declares it
    for file in own:
        order.append(file)
        order += [i.library for i in included if i.declared_in == file]
    texts: dict[str, str] = {}
    raw: dict[str, bytes] = {}
    for file in order:
        shown = display_path(file)
        try:
            texts[shown] = rule_text(data[file])
        except UnicodeDecodeError:
            return None
        if texts[shown].encode("utf-8") != data[file]:
            raw[shown] = data[file]
    where = {display_path(i.library): (display_path(i.declared_in), i.line, i.column) for i in included}
    files = common + own + [i.library for i in included]
    shown_as = {file: display_path(file) for file in data}  # named as now, whatever the working folder when the statements are read
    return KnowledgeBase(version, root, files, None, None, [], [], texts, raw, where, parse=lambda: parse_program(common, own, root, libraries, preread=data, shown_as=shown_as))


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
