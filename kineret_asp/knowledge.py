"""Loading a knowledge base folder: files, parse, clingo's messages, static facts.

A KB is a folder of ``.lp`` files (searched recursively, in sorted order).
Loading parses every file on its own so that all syntax errors are reported,
each as ``file:line:col``; then grounds the KB once without a case and reads
the static facts that the rest of the package needs (vocabulary, criteria,
texts): Python never restates them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Iterable, Optional, Sequence

import clingo
import clingo.ast as ast

from .errors import Diagnostic, KbError
from .terms import SymbolDecoder, Value

_FACT_START = re.compile(r'^([a-z_][A-Za-z0-9_]*)\(\s*("[^"]*"|[a-z_][A-Za-z0-9_]*)', re.M)
_MESSAGE = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+)(?:-(?:\d+:)?\d+)?: (?P<sev>error|warning|info): (?P<msg>.*)", re.S)


def default_kb_path() -> Path:
    """The KB shipped with the package: ``kineret_asp/kb`` when installed, ``kb/`` of a source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "kb", here.parent / "kb"):
        if candidate.is_dir() and any(candidate.glob("*.lp")):
            return candidate
    try:
        packaged = Path(str(resources.files("kineret_asp.kb")))
        if packaged.is_dir():
            return packaged
    except (ModuleNotFoundError, TypeError):
        pass
    return here / "kb"


def parse_message(text: str, fallback_file: str = "<kb>") -> Diagnostic:
    """Turn one clingo message into a diagnostic, keeping its position."""
    first, _, rest = text.strip().partition("\n")
    match = _MESSAGE.match(first)
    if not match:
        return Diagnostic(fallback_file, 0, 0, "error", " ".join(text.split()))
    msg = match.group("msg").strip()
    detail = " ".join(line.strip() for line in rest.splitlines() if line.strip())
    if detail:
        msg = f"{msg} {detail}"
    return Diagnostic(match.group("file"), int(match.group("line")), int(match.group("col")), match.group("sev"), msg)


class MessageLog:
    """A clingo logger that keeps every message as a diagnostic."""

    def __init__(self, fallback_file: str = "<kb>"):
        self.diagnostics: list[Diagnostic] = []
        self._fallback = fallback_file

    def __call__(self, code: clingo.MessageCode, text: str) -> None:
        self.diagnostics.append(parse_message(text, self._fallback))

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


@dataclass(frozen=True)
class Statement:
    """One parsed statement with the program part it belongs to."""

    part: str
    node: ast.AST
    file: str

    @property
    def line(self) -> int:
        return self.node.location.begin.line


@dataclass(frozen=True)
class Criterion:
    """A criterion of the policy's outline: id, parent, how children combine, words."""

    id: str
    parent: Optional[str]
    rule: str
    text: str


def outline_key(criterion_id: str) -> tuple:
    """Sort key following the policy's outline: 1 < 1.A < 1.A.i < 1.A.ii < 1.A.iv < 1.B."""
    romans = {"i": 1, "v": 5, "x": 10, "l": 50}

    def roman(part: str) -> Optional[int]:
        if not part or any(c not in romans for c in part):
            return None
        total = 0
        for i, c in enumerate(part):
            v = romans[c]
            total += -v if i + 1 < len(part) and romans[part[i + 1]] > v else v
        return total

    key = []
    for part in criterion_id.split("."):
        if part.isdigit():
            key.append((0, int(part), ""))
        elif roman(part) is not None:
            key.append((1, roman(part), ""))
        else:
            key.append((2, 0, part))
    return tuple(key)


@dataclass(frozen=True)
class Vocabulary:
    """The static facts of a KB that Python needs, read from the KB itself."""

    policy_id: str
    policy_name: str
    effective_date: str
    indications: dict[str, str]
    specialties: dict[str, str]
    plans: dict[str, str]
    requests: dict[str, str]
    outcomes: dict[str, str]
    test_results: dict[str, str]
    genes: dict[str, str]
    drugs: dict[str, str]
    products: dict[str, str]
    product_of: dict[str, str]
    csdmards: frozenset[str]
    biologics: frozenset[str]
    criteria: dict[str, Criterion]
    children: dict[str, tuple[str, ...]]
    roots: dict[str, str]
    reason_texts: dict[str, str]
    note_texts: dict[Value, str]
    authorization_months: dict[str, int]

    def product_name(self, product: str) -> str:
        return self.products.get(product) or self.drugs.get(product, product)


@dataclass(eq=False)
class KnowledgeBase:
    """A parsed KB folder. Use :func:`load_kb` to get one (it caches)."""

    path: Path
    files: list[Path]
    statements: list[Statement]
    comments: list[Statement]
    messages: list[Diagnostic] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)

    def display_path(self, file: Path | str) -> str:
        return _display(Path(file))

    def part(self, name: str) -> list[Statement]:
        return [s for s in self.statements if s.part == name]

    def part_text(self, name: str) -> str:
        """The statements of one program part, as clingo source text."""
        return "\n".join(str(s.node) for s in self.statements if s.part == name and s.node.ast_type != ast.ASTType.Program)

    def load_into(self, control: clingo.Control, parts: Iterable[str] = ("base",)) -> None:
        """Add the given program parts to a control, each under its own name."""
        for name in parts:
            params = self.part_params(name)
            control.add(name, list(params), self.part_text(name))

    def part_params(self, name: str) -> tuple[str, ...]:
        for s in self.statements:
            if s.part == name and s.node.ast_type == ast.ASTType.Program:
                return tuple(p.name for p in s.node.parameters)
        return ()

    @cached_property
    def static_model(self) -> list[tuple]:
        """Every atom of the KB's base part grounded without a case, decoded."""
        log = MessageLog(_display(self.path))
        control = clingo.Control(["--warn=none"], logger=log, message_limit=1000)
        try:
            self.load_into(control, ["base"])
            control.ground([("base", [])])
        except RuntimeError:
            raise KbError(log.errors() or [Diagnostic(_display(self.path), 0, 0, "error", "the KB does not ground")])
        decode = SymbolDecoder()
        atoms: list[tuple] = []
        result = control.solve(on_model=lambda m: atoms.extend(_as_atom(decode(s)) for s in m.symbols(atoms=True)))
        if not result.satisfiable:
            raise KbError(self._failing_constraints())
        return atoms

    def _failing_constraints(self) -> list[Diagnostic]:
        """Which integrity constraints fail without a case, each at its position."""
        constraints = [s for s in self.part("base") if s.node.ast_type == ast.ASTType.Rule and _is_constraint(s.node)]
        control = clingo.Control(["--warn=none"])
        lines = []
        for s in self.part("base"):
            if s.node.ast_type == ast.ASTType.Program:
                continue
            if s in constraints:
                i = constraints.index(s)
                lines.append(f"violated__({i}) :- {', '.join(str(b) for b in s.node.body)}.")
            else:
                lines.append(str(s.node))
        found: list[int] = []
        try:
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
        return out or [Diagnostic(_display(self.path), 0, 0, "error", "the KB is inconsistent: it has no answer even without a case")]

    @cached_property
    def digest(self) -> str:
        """A hash of the KB's files (names and contents): what derived programs depend on."""
        import hashlib

        h = hashlib.sha256()
        for file in self.files:
            shown = _display(file)
            h.update(os.path.relpath(file, self.path).encode() + b"\0" + self.texts.get(shown, "").encode() + b"\0")
        return h.hexdigest()

    @cached_property
    def declaration_order(self) -> dict[tuple[str, str], int]:
        """Where each fact ``name(key, ...)`` is written, as a rank (files in load order).

        Read from the text: the order authors wrote the vocabulary in is the
        order lists are shown in.
        """
        order: dict[tuple[str, str], int] = {}
        for file in self.files:
            text = self.texts.get(_display(file), "")
            for match in _FACT_START.finditer(text):
                order.setdefault((match.group(1), match.group(2).strip().strip('"')), len(order))
        return order

    @cached_property
    def vocabulary(self) -> Vocabulary:
        return build_vocabulary(self.static_model, _display(self.path), self.declaration_order)


def _as_atom(value: Value) -> tuple:
    return value if isinstance(value, tuple) else (str(value),)


def _is_constraint(rule: ast.AST) -> bool:
    head = rule.head
    return head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.BooleanConstant and not head.atom.value


def _display(path: Path) -> str:
    """A path as users wrote it: relative below the working folder, absolute elsewhere."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def build_vocabulary(atoms: Sequence[tuple], where: str, order: Optional[dict[tuple[str, str], int]] = None) -> Vocabulary:
    """Collect the static facts the package reads, checking the ones it needs."""
    by: dict[tuple[str, int], list[tuple]] = {}
    for atom in atoms:
        by.setdefault((atom[0], len(atom) - 1), []).append(atom[1:])

    rank = order or {}

    def table(name: str, arity: int = 2) -> dict:
        rows = sorted(by.get((name, arity), []), key=lambda a: (rank.get((name, str(a[0])), len(rank)), repr(a)))
        return {str(args[0]): args[1] for args in rows}

    policies = by.get(("policy", 3), [])
    if len(policies) != 1:
        raise KbError([Diagnostic(where, 0, 0, "error", "the KB must state exactly one policy(Id, Name, EffectiveDate) fact")])
    pid, pname, peff = policies[0]
    criteria: dict[str, Criterion] = {}
    for cid, parent, rule, text in by.get(("criterion", 4), []):
        parent_id = None if parent == "none" else str(parent)
        rule_text = rule if isinstance(rule, str) else f"{rule[0]}({','.join(str(a) for a in rule[1:])})"
        criteria[str(cid)] = Criterion(str(cid), parent_id, str(rule_text), str(text))
    children: dict[str, list[str]] = {}
    for c in criteria.values():
        if c.parent is not None:
            children.setdefault(c.parent, []).append(c.id)
    note_texts: dict[Value, str] = {}
    for kind, text in by.get(("note_text", 2), []):
        note_texts[kind] = str(text)
    return Vocabulary(
        policy_id=str(pid),
        policy_name=str(pname),
        effective_date=str(peff),
        indications=table("indication"),
        specialties=table("specialty"),
        plans=table("plan"),
        requests=table("request"),
        outcomes=table("outcome"),
        test_results=table("test_result"),
        genes=table("gene"),
        drugs=table("drug"),
        products=table("product"),
        product_of={str(d): str(p) for d, p in by.get(("product_of", 2), [])},
        csdmards=frozenset(str(a[0]) for a in by.get(("csdmard", 1), [])),
        biologics=frozenset(str(a[0]) for a in by.get(("biologic_or_tsdmard", 1), [])),
        criteria=dict(sorted(criteria.items(), key=lambda kv: outline_key(kv[0]))),
        children={k: tuple(sorted(v, key=outline_key)) for k, v in children.items()},
        roots={str(i): str(r) for i, r in by.get(("indication_criteria", 2), [])},
        reason_texts={str(i): str(t) for i, t in by.get(("reason_text", 2), [])},
        note_texts=note_texts,
        authorization_months={str(r): int(m) for r, m in by.get(("authorization_duration", 2), [])},
    )


def kb_files(path: Path) -> list[Path]:
    """The ``.lp`` files of a KB folder, in a stable order."""
    return sorted(p for p in path.rglob("*.lp") if p.is_file())


def parse_kb(path: Path, strict: bool = True) -> KnowledgeBase:
    """Parse every file of a KB folder.

    With ``strict`` (the default) any syntax error raises :class:`KbError`
    listing them all; otherwise the errors are kept in ``kb.errors`` and the
    files that parsed are loaded (for ``check``).
    """
    where = _display(path)
    if not path.exists():
        raise KbError([Diagnostic(where, 0, 0, "error", "KB folder does not exist")])
    if not path.is_dir():
        raise KbError([Diagnostic(where, 0, 0, "error", "KB path is not a folder")])
    if not os.access(path, os.R_OK | os.X_OK):
        raise KbError([Diagnostic(where, 0, 0, "error", "KB folder is not readable")])
    files = kb_files(path)
    if not files:
        raise KbError([Diagnostic(where, 0, 0, "error", "KB folder holds no .lp file")])
    statements: list[Statement] = []
    comments: list[Statement] = []
    errors: list[Diagnostic] = []
    messages: list[Diagnostic] = []
    texts: dict[str, str] = {}
    for file in files:
        shown = _display(file)
        if not os.access(file, os.R_OK):
            errors.append(Diagnostic(shown, 0, 0, "error", "file is not readable"))
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(Diagnostic(shown, 0, 0, "error", f"cannot read file: {exc}"))
            continue
        texts[shown] = text
        log = MessageLog(shown)
        parsed: list[ast.AST] = []
        try:
            ast.parse_string(text, parsed.append, logger=log, message_limit=100)
        except RuntimeError:
            errors.extend(_relocate(d, shown) for d in log.errors())
            if not log.errors():
                errors.append(Diagnostic(shown, 0, 0, "error", "parsing failed"))
            continue
        messages.extend(_relocate(d, shown) for d in log.diagnostics)
        part = "base"
        for node in parsed:
            if node.ast_type == ast.ASTType.Comment:
                comments.append(Statement(part, node, shown))
                continue
            if node.ast_type == ast.ASTType.Program:
                part = node.name
            statements.append(Statement(part, node, shown))
    if errors and strict:
        raise KbError(errors)
    return KnowledgeBase(path=path, files=files, statements=statements, comments=comments, messages=messages, errors=errors, texts=texts)


def _relocate(diag: Diagnostic, shown: str) -> Diagnostic:
    """Messages from parse_string name ``<string>``: give them the file's name."""
    if diag.file in ("<string>", "<kb>", ""):
        return Diagnostic(shown, diag.line, diag.column, diag.severity, diag.message, diag.code)
    return diag


_CACHE: dict[tuple, KnowledgeBase] = {}


def _fingerprint(path: Path) -> tuple:
    try:
        return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in kb_files(path))
    except OSError:
        return ()


def load_kb(path: Path | str | None = None) -> KnowledgeBase:
    """Load (and cache) the KB in ``path``, or the packaged one."""
    folder = Path(path) if path is not None else default_kb_path()
    folder = folder.resolve() if folder.exists() else folder
    key = (str(folder), _fingerprint(folder))
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    kb = parse_kb(folder)
    kb.vocabulary  # ground once: a KB that does not ground is reported now
    _CACHE.clear() if len(_CACHE) > 16 else None
    _CACHE[key] = kb
    return kb


def resolve_kb(kb: "KnowledgeBase | Path | str | None") -> KnowledgeBase:
    """Accept a KB object, a folder, or None (the packaged KB)."""
    if isinstance(kb, KnowledgeBase):
        return kb
    return load_kb(kb)

