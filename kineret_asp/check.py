"""``kineret-asp check``: find mistakes in a KB the way a compiler would.

Every finding is a :class:`~kineret_asp.errors.Diagnostic` with the file,
line and column it is about:

- syntax errors and clingo's own messages (grounding the KB without a case);
- predicates used in a rule body that nothing defines (a typo such as
  ``biologc(D)``), and predicates defined but never used;
- criterion ids without the policy's words, with a missing parent, declared
  twice, with an unknown combination rule; indications no section decides;
- drug, specialty, indication (and other vocabulary) keys used in rules but
  absent from the vocabulary tables, found by inferring which argument of
  which predicate holds which kind of key;
- rules and tables with no comment naming the policy section (``§``) they
  implement.

A paragraph (lines between blank lines) may carry ``% check: reference`` to
say that its facts are reference data no rule reads (no "never used"
warning).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import clingo
import clingo.ast as ast
from clingo.ast import ASTType

from .errors import Diagnostic, KbError, did_you_mean
from .knowledge import KnowledgeBase, MessageLog, outline_key, parse_kb
from .rewrite import Signature, atoms_in, rule_atoms

# What the package itself reads from a KB, or defines for it.
PACKAGE_READS: set[Signature] = {
    ("policy", 3), ("indication", 2), ("specialty", 2), ("plan", 2), ("request", 2), ("outcome", 2),
    ("test_result", 2), ("gene", 2), ("drug", 2), ("product", 2), ("product_of", 2), ("csdmard", 1),
    ("biologic_or_tsdmard", 1), ("criterion", 4), ("indication_criteria", 2), ("reason_text", 2),
    ("note_text", 2), ("authorization_duration", 2), ("abducible", 1),
    # read by verify from the property part
    ("property", 2), ("counterexample", 0), ("witness", 1), ("expected_witness", 1), ("copy", 1),
}
PACKAGE_DEFINES: set[Signature] = {("abduce", 1), ("copy", 1)}
CRITERION_RULES = ("all", "leaf", "plan_table")
SUPPRESS_UNUSED = "check: reference"

# Which vocabulary table holds the keys of which kind, and where the case
# vocabulary puts them: the seeds of the key-kind inference.
VOCABULARY_KINDS: dict[Signature, str] = {
    ("indication", 2): "indication", ("specialty", 2): "specialty", ("plan", 2): "plan",
    ("request", 2): "request", ("outcome", 2): "outcome", ("test_result", 2): "test result",
    ("drug", 2): "drug", ("product", 2): "product",
}
INPUT_KINDS: dict[tuple[str, int, int], str] = {
    ("case_indication", 1, 0): "indication", ("case_plan", 1, 0): "plan", ("case_request", 1, 0): "request",
    ("case_specialty", 1, 0): "specialty", ("case_genetic_test", 3, 2): "test result",
    ("case_history", 3, 1): "drug", ("case_history", 3, 2): "outcome", ("case_current_medication", 1, 0): "drug",
}

Position = tuple  # (name, arity, index, name, arity, index, ...) down nested terms


@dataclass
class Occurrence:
    sig: Signature
    file: str
    line: int
    column: int
    role: str  # "head" | "body"
    part: str


def _loc(node: ast.AST, file: str) -> tuple[str, int, int]:
    loc = node.location.begin
    return file, loc.line, loc.column


def occurrences(kb: KnowledgeBase) -> list[Occurrence]:
    """Every predicate occurrence, as definition (head) or use (body, condition)."""
    out: list[Occurrence] = []
    for s in kb.statements:
        if s.node.ast_type != ASTType.Rule:
            continue
        defines, reads = rule_atoms(s.node)
        out.extend(Occurrence(sig, *_loc(sym, s.file), "head", s.part) for sig, sym in defines)
        out.extend(Occurrence(sig, *_loc(sym, s.file), "body", s.part) for sig, sym in reads)
    return out


class _Paragraphs:
    """Lines between blank lines, and the comments in each, for every file."""

    def __init__(self, texts: dict[str, str]):
        self.para: dict[str, list[int]] = {}
        self.comments: dict[tuple[str, int], list[tuple[int, str]]] = defaultdict(list)
        for file, text in texts.items():
            ids, current, blank = [0], 0, True
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    blank = True
                    ids.append(current)
                    continue
                if blank:
                    current += 1
                    blank = False
                ids.append(current)
                stripped = line.strip()
                if stripped.startswith("%"):
                    self.comments[(file, current)].append((number, stripped))
            self.para[file] = ids

    def of(self, file: str, line: int) -> int:
        ids = self.para.get(file, [])
        return ids[line] if line < len(ids) else -1

    def has_section(self, file: str, line: int) -> bool:
        return any("§" in text and number <= line for number, text in self.comments.get((file, self.of(file, line)), []))

    def suppressed(self, file: str, line: int) -> bool:
        return any(SUPPRESS_UNUSED in text for _, text in self.comments.get((file, self.of(file, line)), []))


def _check_sections(kb: KnowledgeBase, paras: _Paragraphs) -> list[Diagnostic]:
    out = []
    for s in kb.statements:
        if s.node.ast_type != ASTType.Rule:
            continue
        file, line, col = _loc(s.node, s.file)
        if not paras.has_section(file, line):
            kind = "table fact" if not s.node.body else "rule"
            out.append(Diagnostic(file, line, col, "error", f"{kind} has no comment naming the policy section it implements (a '% §' comment above it, in the same paragraph)", "section"))
    return out


def _check_predicates(kb: KnowledgeBase, occs: list[Occurrence], paras: _Paragraphs) -> list[Diagnostic]:
    from .engine import input_signatures
    from .rewrite import dynamic_predicates

    out = []
    declared = {(s.node.name, s.node.arity) for s in kb.statements if s.node.ast_type in (ASTType.Defined,)}
    shown = {(s.node.name, s.node.arity) for s in kb.statements if s.node.ast_type == ASTType.ShowSignature}
    defined = {o.sig for o in occs if o.role == "head"} | declared | PACKAGE_DEFINES
    # properties name case-dependent predicates with the copy as first argument
    dynamic = dynamic_predicates([s.node for s in kb.part("base")] + [s.node for s in kb.part("space")], input_signatures(kb))
    defined |= {(name, arity + 1) for name, arity in dynamic}
    used = {o.sig for o in occs if o.role == "body"} | shown | PACKAGE_READS
    reported: set[tuple] = set()
    names_by_arity: dict[int, list[str]] = defaultdict(list)
    for name, arity in defined:
        names_by_arity[arity].append(name)
    for o in occs:
        if o.role == "body" and o.sig not in defined and (o.sig, o.file, o.line) not in reported:
            reported.add((o.sig, o.file, o.line))
            hint = did_you_mean(o.sig[0], names_by_arity[o.sig[1]])
            hint = hint.replace("'?", f"/{o.sig[1]}'?") if hint else ""
            out.append(Diagnostic(o.file, o.line, o.column, "error", f"{o.sig[0]}/{o.sig[1]} is used but never defined{hint}", "undefined"))
    first_def: dict[Signature, Occurrence] = {}
    for o in occs:
        if o.role == "head":
            first_def.setdefault(o.sig, o)
    for sig, o in sorted(first_def.items(), key=lambda kv: (kv[1].file, kv[1].line)):
        if sig in used or sig in declared:
            continue
        if any(paras.suppressed(x.file, x.line) for x in occs if x.sig == sig and x.role == "head"):
            continue
        out.append(Diagnostic(o.file, o.line, o.column, "warning", f"{sig[0]}/{sig[1]} is defined but never used (mark reference tables with '% {SUPPRESS_UNUSED}')", "unused"))
    return out


class _KeyKinds:
    """Infer which argument positions hold which kinds of vocabulary keys."""

    def __init__(self, kb: KnowledgeBase):
        self.kinds: dict[Position, set[str]] = defaultdict(set)
        for (name, arity), kind in VOCABULARY_KINDS.items():
            self.kinds[(name, arity, 0)].add(kind)
        for (name, arity, index), kind in INPUT_KINDS.items():
            self.kinds[(name, arity, index)].add(kind)
            self.kinds[(name, arity + 1, index + 1)].add(kind)  # with a copy argument (properties)
        self.rules = [s for s in kb.statements if s.node.ast_type == ASTType.Rule]
        self._terms = [self.atom_terms(s.node) for s in self.rules]
        self._infer()

    @staticmethod
    def terms(node: ast.AST, prefix: Position) -> Iterable[tuple[Position, ast.AST]]:
        """(position, term) for every argument, down nested function terms and pools."""
        if node.ast_type == ASTType.Pool:
            for arg in node.arguments:
                yield from _KeyKinds.terms(arg, prefix)
            return
        yield prefix, node
        if node.ast_type == ASTType.Function and node.arguments:
            for i, arg in enumerate(node.arguments):
                yield from _KeyKinds.terms(arg, prefix + (node.name, len(node.arguments), i))

    def atom_terms(self, stm: ast.AST) -> list[tuple[Position, ast.AST]]:
        """(position, term) for every argument of every atom of a statement."""
        found = []
        for sig, sym in atoms_in([stm]):
            if sym.ast_type == ASTType.Function:
                args = sym.arguments
                if len(args) == 1 and args[0].ast_type == ASTType.Pool and not sig[1] == 1:
                    continue
                for i, arg in enumerate(args):
                    found.extend(self.terms(arg, (sig[0], sig[1], i)))
        return found

    def _infer(self) -> None:
        per_rule = []
        for terms in self._terms:
            variables: dict[str, list[Position]] = defaultdict(list)
            for pos, term in terms:
                if term.ast_type == ASTType.Variable and term.name != "_":
                    variables[term.name].append(pos)
            per_rule.append(list(variables.values()))
        changed = True
        while changed:
            changed = False
            for groups in per_rule:
                for positions in groups:
                    union: set[str] = set()
                    for p in positions:
                        union |= self.kinds.get(p, set())
                    if not union:
                        continue
                    for p in positions:
                        if not union <= self.kinds[p]:
                            self.kinds[p] |= union
                            changed = True


def _check_keys(kb: KnowledgeBase) -> list[Diagnostic]:
    vocab = kb.vocabulary
    keys = {
        "indication": set(vocab.indications), "specialty": set(vocab.specialties), "plan": set(vocab.plans),
        "request": set(vocab.requests), "outcome": set(vocab.outcomes), "test result": set(vocab.test_results),
        "drug": set(vocab.drugs), "product": set(vocab.products),
    }
    inference = _KeyKinds(kb)
    out = []
    defining = {(name, arity, 0) for name, arity in VOCABULARY_KINDS}
    for s, terms in zip(inference.rules, inference._terms):
        for pos, term in terms:
            if pos in defining or term.ast_type not in (ASTType.SymbolicTerm, ASTType.Function):
                continue
            if term.ast_type == ASTType.Function:
                if term.arguments:
                    continue
                name = term.name
            else:
                sym = term.symbol
                if sym.type != clingo.SymbolType.Function or sym.arguments:
                    continue
                name = sym.name
            kinds = inference.kinds.get(pos)
            if not kinds or name == "none":
                continue
            allowed = set().union(*(keys[k] for k in kinds))
            if name not in allowed:
                file, line, col = _loc(term, s.file)
                what = " or ".join(sorted(kinds))
                out.append(Diagnostic(file, line, col, "error", f"unknown {what} key '{name}' (not in the vocabulary tables){did_you_mean(name, allowed)}", "key"))
    return out


class _FactIndex:
    """Where facts ``name(first, ...)`` are written, built in one pass over the KB."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.facts: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
        self.rules: dict[str, tuple[str, int, int]] = {}
        for s in kb.statements:
            node = s.node
            if node.ast_type != ASTType.Rule:
                continue
            head = node.head
            if head.ast_type != ASTType.Literal or head.atom.ast_type != ASTType.SymbolicAtom:
                continue
            symbol = head.atom.symbol
            if symbol.ast_type != ASTType.Function:
                continue
            if node.body:
                self.rules.setdefault(symbol.name, _loc(node, s.file))
            elif symbol.arguments:
                self.facts[(symbol.name, str(symbol.arguments[0]).strip('"'))].append(_loc(node, s.file))

    def locations(self, name: str, first: str) -> list[tuple[str, int, int]]:
        found = self.facts.get((name, first))
        if found:
            return found
        if name in self.rules:
            return [self.rules[name]]
        return [(self.kb.display_path(self.kb.path), 0, 0)]


def _check_criteria(kb: KnowledgeBase) -> list[Diagnostic]:
    out = []
    index = _FactIndex(kb)
    rows = [a[1:] for a in kb.static_model if a[0] == "criterion" and len(a) == 5]
    by_id: dict[str, list[tuple]] = defaultdict(list)
    for cid, parent, rule, text in rows:
        by_id[str(cid)].append((parent, rule, text))
    children: dict[str, int] = defaultdict(int)
    for cid, parent, rule, text in rows:
        if str(parent) != "none":
            children[str(parent)] += 1
    for cid in sorted(by_id, key=outline_key):
        defs = by_id[cid]
        where = index.locations("criterion", cid)
        file, line, col = where[0]
        if len(defs) > 1:
            loc = where[1] if len(where) > 1 else where[0]
            out.append(Diagnostic(loc[0], loc[1], loc[2], "error", f"criterion id {cid} is declared {len(defs)} times with different parents, rules or words", "criteria"))
        for parent, rule, text in defs:
            if not str(text).strip():
                out.append(Diagnostic(file, line, col, "error", f"criterion {cid} has no words: quote the policy's text for it", "criteria"))
            if str(parent) != "none" and str(parent) not in by_id:
                out.append(Diagnostic(file, line, col, "error", f"criterion {cid} has parent {parent}, which is not a criterion", "criteria"))
            rule_name = rule[0] if isinstance(rule, tuple) else str(rule)
            if rule_name not in CRITERION_RULES and rule_name != "at_least":
                out.append(Diagnostic(file, line, col, "error", f"criterion {cid} combines its children by '{rule_name}'; expected one of all, at_least(N), leaf, plan_table", "criteria"))
            if rule_name in ("all", "at_least") and not children[cid]:
                out.append(Diagnostic(file, line, col, "error", f"criterion {cid} combines its children ({rule_name}) but has none", "criteria"))
    vocab = kb.vocabulary
    decided = set(vocab.roots)
    decided |= {str(a[2]) for a in kb.static_model if a[0] == "excluded_indication" and len(a) == 3}
    decided |= {str(a[2]) for a in kb.static_model if a[0] == "other_policy_use" and len(a) == 4}
    for key in vocab.indications:
        if key not in decided and key != "other":
            file, line, col = index.locations("indication", key)[0]
            out.append(Diagnostic(file, line, col, "error", f"indication {key} has no criteria: no indication_criteria/2, excluded_indication/2 or other_policy_use/3 names it", "criteria"))
    for key, root in vocab.roots.items():
        if root not in by_id:
            file, line, col = index.locations("indication_criteria", key)[0]
            out.append(Diagnostic(file, line, col, "error", f"indication {key} is decided by criterion {root}, which is not declared", "criteria"))
    return out


def _check_grounding(kb: KnowledgeBase) -> list[Diagnostic]:
    """Ground the KB without a case: clingo's own errors and warnings."""
    log = MessageLog(kb.display_path(kb.path))
    control = clingo.Control(["--warn=all"], logger=log, message_limit=200)
    try:
        for f in kb.files:
            control.load(str(f))
        control.ground([("base", [])])
    except RuntimeError:
        pass
    out = []
    for d in log.diagnostics:
        if "does not occur in any rule head" in d.message:
            continue  # reported, with a suggestion, as "used but never defined"
        sev = "error" if d.severity == "error" else "warning"
        out.append(Diagnostic(d.file, d.line, d.column, sev, d.message, "clingo"))
    return out


@dataclass
class CheckReport:
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> int:
        return sum(d.severity == "error" for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity == "warning" for d in self.diagnostics)

    def to_dict(self) -> dict:
        return {"errors": self.errors, "warnings": self.warnings, "diagnostics": [d.to_dict() for d in self.diagnostics]}


def check_kb(path: Optional[Path | str] = None) -> CheckReport:
    """Run every check on a KB folder (default: the packaged KB)."""
    from .knowledge import default_kb_path

    folder = Path(path) if path is not None else default_kb_path()
    try:
        kb = parse_kb(folder, strict=False)
    except KbError as exc:
        return CheckReport(exc.diagnostics)
    diags = list(kb.errors)
    diags.extend(d for d in kb.messages if d.severity != "info")
    paras = _Paragraphs(kb.texts)
    occs = occurrences(kb)
    diags += _check_sections(kb, paras)
    diags += _check_predicates(kb, occs, paras)
    grounding = _check_grounding(kb) if not kb.errors else []
    diags += grounding
    if not kb.errors and not any(d.severity == "error" for d in grounding):
        try:
            kb.vocabulary
        except KbError as exc:
            diags += exc.diagnostics
        else:
            diags += _check_criteria(kb)
            diags += _check_keys(kb)
    unique = sorted(set(diags), key=lambda d: (d.file, d.line, d.column, d.severity, d.message))
    return CheckReport(unique)
