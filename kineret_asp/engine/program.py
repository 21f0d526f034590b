"""The KB compiled into every program the package runs: the one place that does it.

Authors write the KB for one case at a time. The engines and the questions
need other shapes of the same rules, all built here from one parse of the
KB (:class:`Compiled`, cached on the loaded KB):

- the decision program (the rules the shown predicates depend on, for one
  case; the resident engine grounds it once with the inputs as externals);
- the chunk program, where every predicate that depends on the case takes
  the case number as its first argument, so a chunk of cases is one
  grounding;
- copies of a case in one program (``verify``'s properties, ``missing``'s
  case as given and case with documentation): the same rewrite with a copy
  name, plus the case space and the relations between copies, generated
  from the case schema;
- the program of ``missing``: the hypothetical copy's inputs generated from
  the schema and the documentation the policy declares;
- both versions of ``diff`` side by side (every predicate but the inputs
  renamed, with clingox).

:func:`dynamic_predicates` finds the predicates that depend on the case;
:class:`_AddArgument` rewrites statements without rebuilding the nodes it
does not change (clingo's Transformer rebuilds every node it visits, which
is several times slower on this KB). Authors never see the extra argument.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

import clingo.ast as ast
from clingo.ast import ASTType

from ..memo import IdentityMemo

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase

Signature = tuple[str, int]


def atom_signature(atom: ast.AST) -> Optional[Signature]:
    """The name/arity of a symbolic atom (None for pools and other forms)."""
    symbol = atom.symbol
    if symbol.ast_type == ASTType.Function:
        return (symbol.name, len(symbol.arguments))
    if symbol.ast_type == ASTType.SymbolicTerm:
        sym = symbol.symbol
        return (sym.name, len(sym.arguments)) if sym.type.name == "Function" else None
    if symbol.ast_type == ASTType.UnaryOperation and symbol.argument.ast_type == ASTType.Function:
        return (symbol.argument.name, len(symbol.argument.arguments))
    if symbol.ast_type == ASTType.Pool and symbol.arguments and symbol.arguments[0].ast_type == ASTType.Function:
        first = symbol.arguments[0]
        return (first.name, len(first.arguments))
    return None


def _walk_atoms(node: ast.AST, found: list) -> None:
    """Append (signature, symbol node) for every symbolic atom below node.

    Read only: clingo's Transformer rebuilds every node it visits, which is
    slow; this walk rebuilds nothing.
    """
    kind = node.ast_type
    if kind == ASTType.SymbolicAtom:
        sig = atom_signature(node)
        if sig is not None:
            found.append((sig, node.symbol))
        return
    if kind in _LEAVES:
        return
    for key in node.child_keys:
        child = getattr(node, key)
        if child is None:
            continue
        if isinstance(child, ast.AST):
            _walk_atoms(child, found)
        else:
            for item in child:
                if isinstance(item, ast.AST):
                    _walk_atoms(item, found)


_LEAVES = {ASTType.Variable, ASTType.SymbolicTerm, ASTType.Comment, ASTType.BooleanConstant}


def atoms_in(nodes: Iterable[ast.AST]) -> list[tuple[Signature, ast.AST]]:
    """(signature, symbol node) for every symbolic atom in the nodes, in order."""
    found: list[tuple[Signature, ast.AST]] = []
    for n in nodes:
        _walk_atoms(n, found)
    return found


def signatures(node: ast.AST | Sequence[ast.AST]) -> list[Signature]:
    """Every predicate signature used in a node (or list of nodes)."""
    return [sig for sig, _ in atoms_in(node if isinstance(node, (list, tuple)) else [node])]


def rule_parts(rule: ast.AST) -> tuple[list[ast.AST], list[ast.AST]]:
    """The parts of a rule that define predicates (its head literals) and those
    that read them (its body, and the conditions and terms inside its head)."""
    head = rule.head
    kind = head.ast_type
    defines: list[ast.AST] = []
    reads: list[ast.AST] = list(rule.body)
    if kind == ASTType.Literal:
        if head.atom.ast_type == ASTType.SymbolicAtom:
            defines.append(head)
    elif kind in (ASTType.Disjunction, ASTType.Aggregate):
        for e in head.elements:
            defines.append(e.literal)
            reads.extend(e.condition)
    elif kind == ASTType.HeadAggregate:
        for e in head.elements:
            defines.append(e.condition.literal)
            reads.extend(e.condition.condition)
            reads.extend(e.terms)
    return defines, reads


_RULE_ATOMS = IdentityMemo(50_000)
"""rule_atoms by rule (its identity): check,
the compiler and the literate view walk the same loaded rules several times, through clingo's slow AST."""


def rule_atoms(rule: ast.AST) -> tuple[list[tuple[Signature, ast.AST]], list[tuple[Signature, ast.AST]]]:
    """(signature, symbol node) of the atoms a rule defines, and of those it reads (do not change the lists)."""

    def walk() -> tuple:
        defines, reads = rule_parts(rule)
        return atoms_in(defines), atoms_in(reads)

    return _RULE_ATOMS.of(rule, walk)  # type: ignore[return-value]


def rule_signatures(rule: ast.AST) -> tuple[set[Signature], set[Signature]]:
    """The predicates a rule defines, and those it reads (one walk of the rule)."""
    defines, reads = rule_atoms(rule)
    return {sig for sig, _ in defines}, {sig for sig, _ in reads}


def dynamic_predicates(statements: Iterable[ast.AST], inputs: Iterable[Signature]) -> set[Signature]:
    """Inputs plus every predicate whose rules read, directly or not, an input."""
    edges = [rule_signatures(s) for s in statements if s.ast_type == ASTType.Rule]
    dynamic = set(inputs)
    changed = True
    while changed:
        changed = False
        for heads, body in edges:
            if body & dynamic and not heads <= dynamic:
                dynamic |= heads
                changed = True
    return dynamic


class _AddArgument:
    """Give every atom of the chosen predicates one more first argument.

    Walks the tree and rebuilds only the nodes on the way to a changed atom
    (clingo's own Transformer rebuilds every node it visits, which is slow).
    """

    def __init__(self, predicates: set[Signature], make_term: Callable[[ast.Location], ast.AST]):
        self.predicates = predicates
        self.make_term = make_term

    def __call__(self, node: ast.AST) -> ast.AST:
        kind = node.ast_type
        if kind == ASTType.SymbolicAtom:
            return self.atom(node)
        if kind in _LEAVES:
            return node
        changes: dict[str, object] = {}
        for key in node.child_keys:
            child = getattr(node, key)
            if child is None:
                continue
            if isinstance(child, ast.AST):
                new = self(child)
                if new is not child:
                    changes[key] = new
            else:
                items = list(child)
                new_items = [self(i) if isinstance(i, ast.AST) else i for i in items]
                if any(a is not b for a, b in zip(items, new_items)):
                    changes[key] = new_items
        return node.update(**changes) if changes else node

    def atom(self, node: ast.AST) -> ast.AST:
        sig = atom_signature(node)
        if sig is None or sig not in self.predicates:
            return node
        symbol = node.symbol
        loc = symbol.location
        if symbol.ast_type == ASTType.Pool:
            tagged = [a.update(arguments=[self.make_term(loc), *a.arguments]) for a in symbol.arguments]
            return node.update(symbol=symbol.update(arguments=tagged))
        if symbol.ast_type == ASTType.SymbolicTerm:
            symbol = ast.Function(loc, symbol.symbol.name, [], 0)
        if symbol.ast_type == ASTType.UnaryOperation:
            inner = symbol.argument
            inner = inner.update(arguments=[self.make_term(loc), *inner.arguments])
            return node.update(symbol=symbol.update(argument=inner))
        return node.update(symbol=symbol.update(arguments=[self.make_term(loc), *symbol.arguments]))


def _positive_body_atom(rule: ast.AST, predicates: set[Signature]) -> bool:
    for lit in rule.body:
        if lit.ast_type == ASTType.Literal and lit.sign == ast.Sign.NoSign and lit.atom.ast_type == ASTType.SymbolicAtom:
            if atom_signature(lit.atom) in predicates:
                return True
    return False


@dataclass(frozen=True)
class Rewrite:
    """How to tag a program: which predicates, with which term, guarded by which atom."""

    predicates: frozenset[Signature]
    term: Callable[[ast.Location], ast.AST]
    guard: Optional[Callable[[ast.Location], ast.AST]] = None  # a literal binding the term's variable


def rewrite_statement(node: ast.AST, rw: Rewrite) -> Optional[ast.AST]:
    """Tag one statement; returns None for statements to drop (#show of others)."""
    preds = set(rw.predicates)
    kind = node.ast_type
    if kind == ASTType.Rule:
        heads, body = rule_signatures(node)
        if not (heads | body) & preds:
            return node
        new = _AddArgument(preds, rw.term)(node)
        if rw.guard is not None and not _positive_body_atom(node, preds):
            new = new.update(body=[*new.body, rw.guard(node.location)])
        return new
    if kind == ASTType.Defined:
        if (node.name, node.arity) in preds:
            return node.update(arity=node.arity + 1)
        return node
    if kind == ASTType.ShowSignature:
        if (node.name, node.arity) in preds:
            return node.update(arity=node.arity + 1)
        return None
    return node


_NODE_TEXTS = IdentityMemo(50_000)
"""Each statement's text, by node: clingo prints a node through its API, and a KB edited in
one file shares the unchanged statements (and so their texts) with the KB it was copied from."""


def node_text(node: ast.AST) -> str:
    """A statement as clingo source text (remembered by node)."""
    return _NODE_TEXTS.of(node, lambda: str(node))


_CHUNK_LINES = IdentityMemo(50_000)
"""A statement's line in the chunk program, by node, with the case-dependent predicates it was made for."""


def _chunk_line(node: ast.AST, rw: Rewrite) -> Optional[str]:
    """:func:`rewrite_statement` for the chunk program, as text (remembered by node and predicates)."""
    known = _CHUNK_LINES.recall(node)
    if known is not None and known[0] == rw.predicates:  # type: ignore[index]
        return known[1]  # type: ignore[index]
    new = rewrite_statement(node, rw)
    text = None if new is None else (node_text(node) if new is node else str(new))
    _CHUNK_LINES.keep(node, (rw.predicates, text))
    return text


def variable(name: str) -> Callable[[ast.Location], ast.AST]:
    return lambda loc: ast.Variable(loc, name)


def constant(name: str) -> Callable[[ast.Location], ast.AST]:
    return lambda loc: ast.Function(loc, name, [], 0)


def guard_atom(predicate: str, var: str) -> Callable[[ast.Location], ast.AST]:
    return lambda loc: ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(ast.Function(loc, predicate, [ast.Variable(loc, var)], 0)))


def needed_statements(statements: Sequence[ast.AST], targets: Iterable[Signature]) -> list[ast.AST]:
    """The statements a set of predicates depends on (rules for them, transitively).

    Rules defining only predicates that nothing shown depends on (such as the
    abducible/1 declarations, read only by what-is-missing) are left out, so
    a decision grounds only what it reads. Integrity constraints and
    directives are always kept.
    """
    signatures = {id(s): rule_signatures(s) for s in statements if s.ast_type == ASTType.Rule}
    needed = set(targets)
    for heads, body in signatures.values():
        if not heads:  # an integrity constraint: what it reads is needed
            needed |= body
    changed = True
    while changed:
        changed = False
        for heads, body in signatures.values():
            if heads & needed and not body <= needed:
                needed |= body
                changed = True
    out = []
    for s in statements:
        if s.ast_type != ASTType.Rule:
            out.append(s)
            continue
        heads = signatures[id(s)][0]
        if not heads or heads & needed:
            out.append(s)
    return out


def parse_text(text: str) -> list[ast.AST]:
    """Statements of a generated program text (names come from the KB, never from a case)."""
    nodes: list[ast.AST] = []
    ast.parse_string(text, nodes.append)
    return [n for n in nodes if n.ast_type != ASTType.Program]


def shown_signatures(statements: Iterable[ast.AST]) -> list[Signature]:
    """What a decision reads: the predicates the program shows."""
    return [(n.name, n.arity) for n in statements if n.ast_type == ASTType.ShowSignature]


CASE_VAR = "CASE__"
CASE_GUARD = "case__"
COPY_VAR = "COPY__"
COPY_GUARD = "copy"
GIVEN, HYP = "given", "hyp"


class Compiled:
    """Every program derived from one KB, each built once (and the slow ones cached on disk)."""

    def __init__(self, kb: "KnowledgeBase"):
        from ..errors import Diagnostic, KbError

        self.kb = kb
        self.schema = kb.schema
        self.inputs = frozenset(self.schema.input_signatures())
        self._renamed_texts: dict[str, str] = {}
        if not self.shown:
            raise KbError([Diagnostic(kb.display_path(kb.path), 0, 0, "error", "the KB shows nothing: framework/decision.lp must #show the predicates a decision reads")])

    @cached_property
    def base(self) -> list[ast.AST]:
        """The statements of the program's base part (read on first use: a decision whose programs are in the disk cache parses nothing)."""
        return [s.node for s in self.kb.part("base") if s.node.ast_type != ASTType.Program]

    @cached_property
    def shown(self) -> list[Signature]:
        """The predicates the program shows (what a decision reads), kept in the disk cache with the programs."""
        import json

        text = self._cached("shown", lambda: json.dumps(shown_signatures(self.base), separators=(",", ":")))
        return [(str(name), int(arity)) for name, arity in json.loads(text)]

    @cached_property
    def dynamic(self) -> frozenset[Signature]:
        return frozenset(dynamic_predicates(self.base, self.inputs))

    def _cached(self, kind: str, build: Callable[[], str]) -> str:
        from ..knowledge.diskcache import cached_text

        return cached_text(kind, self.kb.digest, build)

    # --- one case ----------------------------------------------------------------

    def domain_signatures(self) -> list[Signature]:
        """The vocabularies the inputs draw keys from (the resident engine declares externals over them)."""
        out = []
        for args in self.schema.input_predicates.values():
            for arg in args:
                if arg.kind.vocabulary and (arg.kind.vocabulary, 2) not in out:
                    out.append((arg.kind.vocabulary, 2))
        return out

    @cached_property
    def decision_text(self) -> str:
        """The rules the shown predicates depend on, for one case, with the inputs declared."""

        def build() -> str:
            kept = needed_statements(self.base, [*self.shown, *self.domain_signatures()])
            return "\n".join([self.schema.defined_text(), *(node_text(n) for n in kept)])

        return self._cached("decision", build)

    @cached_property
    def chunk_text(self) -> str:
        """The decision program with the case number on every case-dependent predicate."""

        def build() -> str:
            rw = Rewrite(self.dynamic, variable(CASE_VAR), guard_atom(CASE_GUARD, CASE_VAR))
            lines = ["#show."]
            for node in needed_statements(self.base, self.shown):
                text = _chunk_line(node, rw)
                if text is not None:
                    lines.append(text)
            lines.append(f"#defined {CASE_GUARD}/1.")
            lines += [f"#defined {n}/{a + 1}." for n, a in sorted(self.inputs)]
            return "\n".join(lines)

        return self._cached("chunk", build)

    # --- copies of a case ----------------------------------------------------------

    def tagged(self, statements: Iterable[ast.AST], guard: str = COPY_GUARD, extra: Iterable[Signature] = ()) -> list[str]:
        """Statements with every case-dependent predicate taking a copy as first argument.

        A rule that reads no case-dependent atom positively gets ``guard(Copy)``
        so that it is grounded once per copy the program declares.
        """
        rw = Rewrite(self.dynamic | frozenset(extra), variable(COPY_VAR), guard_atom(guard, COPY_VAR))
        out = []
        for node in statements:
            if node.ast_type in (ASTType.Program, ASTType.ShowSignature, ASTType.ShowTerm):
                continue
            new = rewrite_statement(node, rw)
            if new is not None:
                out.append(str(new))
        return out

    @cached_property
    def tagged_base(self) -> list[str]:
        return [*self.tagged(self.base), *[f"#defined {n}/{a + 1}." for n, a in sorted(self.inputs)]]

    def part(self, name: str) -> list[ast.AST]:
        return [s.node for s in self.kb.part(name) if s.node.ast_type != ASTType.Program]

    @cached_property
    def space_text(self) -> str:
        """The case space of verify and diff, for one case: choices over every input the schema declares."""
        return self._space(choices=True)

    @cached_property
    def space_domain_text(self) -> str:
        """The values the case space gives each field (``space_dom__(Field, X)``, ``space_dom__((List, Field), X)``), without the choices.

        ``diff`` joins two versions' domains into one space over both schemas.
        """
        return self._space(choices=False)

    def _space(self, choices: bool) -> str:
        from ..knowledge.schema import BOOLEAN, ENTRIES, INTEGER, KEY, LIST, NAME, OPEN_KEY

        s = self.schema
        lines = [
            "#defined space_value/2.",
            "#defined space_entry_value/3.",
            "#defined space_entry_key/2.",
        ]
        if not choices:
            lines.append("#defined space_dom__/2.")

        def domain(target: str, kind, restricted: str, declared: str) -> None:
            # the declared values, or else every value of the field's vocabulary
            lines.append(f"space_dom__({target}, X) :- {declared}.")
            lines.append(f"space_restricted__({target}) :- {declared.replace('X', '_')}.")
            if kind.name in (KEY, OPEN_KEY, NAME):
                lines.append(f"space_dom__({target}, X) :- {kind.vocabulary}(X, _), not space_restricted__({target}).")
            elif kind.name == INTEGER:
                lines.append(f"space_dom__({target}, ({kind.minimum}; {kind.maximum})) :- not space_restricted__({target}).")

        for f in s.fields:
            if f.atom is None:
                continue
            k = f.kind
            if not choices:  # the domains alone
                if k.name == LIST:
                    domain(f.name, k.item, "", f"space_value({f.name}, X)")
                elif k.name == ENTRIES:
                    for e in f.entry_fields:
                        if e.kind.name != BOOLEAN:
                            domain(f"({f.name}, {e.name})", e.kind, "", f"space_entry_value({f.name}, {e.name}, X)")
                elif k.name != BOOLEAN:
                    domain(f.name, k, "", f"space_value({f.name}, X)")
                continue
            if k.name == BOOLEAN:
                lines.append(f"{{ {f.atom} }}.")
            elif k.name == LIST:
                domain(f.name, k.item, "", f"space_value({f.name}, X)")
                lines.append(f"{{ {f.atom}(X) : space_dom__({f.name}, X) }}.")
            elif k.name == ENTRIES:
                placed = sorted((e for e in f.entry_fields if e.place is not None), key=lambda e: e.place)
                for e in f.entry_fields:
                    if e.kind.name != BOOLEAN:
                        domain(f"({f.name}, {e.name})", e.kind, "", f"space_entry_value({f.name}, {e.name}, X)")
                args = [f"A{i}" for i in range(len(placed))]
                conds = [f"space_dom__(({f.name}, {e.name}), A{i})" for i, e in enumerate(placed)]
                # keyed: at most one entry per value of the key field; else at most one entry
                for i, e in enumerate(placed):
                    keyed_args = [("K" if j == i else a) for j, a in enumerate(args)]
                    keyed_conds = ", ".join(c for j, c in enumerate(conds) if j != i) or "#true"
                    lines.append(f"{{ {f.atom}(e(K), {', '.join(keyed_args)}) : {keyed_conds} }} 1 :- space_entry_key({f.name}, {e.name}), space_dom__(({f.name}, {e.name}), K).")
                lines.append(f"space_keyed__({f.name}) :- space_entry_key({f.name}, _).")
                lines.append(f"{{ {f.atom}(0, {', '.join(args)}) : {', '.join(conds)} }} 1 :- not space_keyed__({f.name}).")
                for e in f.entry_fields:
                    if e.atom is None:
                        continue
                    entry = f"{f.atom}(N, {', '.join('_' for _ in placed)})"
                    if e.kind.name == BOOLEAN:
                        lines.append(f"{{ {e.atom}(N) }} :- {entry}.")
                    else:
                        lines.append(f"{{ {e.atom}(N, V) : space_dom__(({f.name}, {e.name}), V) }} 1 :- {entry}.")
            else:
                domain(f.name, k, "", f"space_value({f.name}, X)")
                low = "0" if f.presence == "optional" else "1"
                lines.append(f"{low} {{ {f.atom}(X) : space_dom__({f.name}, X) }} 1.")
        return "\n".join(lines)

    def relations_text(self) -> list[str]:
        """input_fact(Copy, Field, Atom) for every input fact, and differs(X, Y, Field).

        Properties that need "the same case except X" state it with differs/3:
        copy X has a fact of Field that copy Y has not.
        """
        lines = []
        for (name, arity), args in sorted(self.schema.input_predicates.items()):
            field = args[0].field.name if args else self.schema.field_of_atom(name).name  # type: ignore[union-attr]
            vars_ = [f"X{i}" for i in range(arity)]
            atom = f"{name}({', '.join(vars_)})" if vars_ else name
            lines.append(f"input_fact({COPY_VAR}, {field}, {atom}) :- {name}({', '.join([COPY_VAR, *vars_])}).")
        lines.append("differs(A, B, F) :- input_fact(A, F, X), copy(B), A != B, not input_fact(B, F, X).")
        lines.append("#defined input_fact/3.")
        return lines

    def copies_program(self, parts: Sequence[str] = ("space",)) -> list[str]:
        """The tagged base, the case space and the given parts, for copies of a case."""
        generated = parse_text(self.space_text)
        statements = [*generated]
        for name in parts:
            statements += self.part(name)
        return [*self.tagged_base, *self.tagged(statements), *self.relations_text()]

    # --- what is missing -------------------------------------------------------------

    @cached_property
    def abduction_text(self) -> str:
        """The case as given and the case with chosen documentation, in one program."""
        from ..knowledge.schema import BOOLEAN, ENTRIES, LIST

        def build() -> str:
            # only what the question reads: the decision, what is met, the reasons, the documentation
            read = [("decision", 1), ("met", 1), ("reason", 1), ("abducible", 1), ("documents", 2), ("documents_entry", 3)]
            lines = ["#show.", "#show abduce/1.", *self.tagged(needed_statements(self.base, read), guard="copy__"), f"copy__({GIVEN}). copy__({HYP}).", "#defined copy__/1."]
            lines += [f"#defined {n}/{a + 1}." for n, a in sorted(self.inputs)]
            doc = f"abduce(I), documents({GIVEN}, I"
            for f in self.schema.fields:
                if f.atom is None:
                    continue
                k, p, n = f.kind, f.atom, f.name
                if k.name == BOOLEAN:
                    lines.append(f"{p}({HYP}) :- {p}({GIVEN}), not set__({n}).")
                    lines.append(f"{p}({HYP}) :- {doc}, set({n}, true)).")
                    lines.append(f"set__({n}) :- {doc}, set({n}, _)).")
                elif k.name == LIST:
                    lines.append(f"{p}({HYP}, X) :- {p}({GIVEN}, X), not removed__({n}, X).")
                    lines.append(f"{p}({HYP}, X) :- {doc}, add({n}, X)).")
                    lines.append(f"removed__({n}, X) :- {doc}, remove({n}, X)).")
                elif k.name == ENTRIES:
                    placed = sorted((e for e in f.entry_fields if e.place is not None), key=lambda e: e.place)
                    args = ", ".join(f"A{i}" for i in range(len(placed)))
                    parts = ", ".join(f"documents_entry({GIVEN}, I, {e.name}, A{i})" for i, e in enumerate(placed))
                    lines.append(f"{p}({HYP}, N, {args}) :- {p}({GIVEN}, N, {args}).")
                    lines.append(f"{p}({HYP}, new(I), {args}) :- {doc}, add({n})), {parts}.")
                    for e in f.entry_fields:
                        if e.atom is None:
                            continue
                        q, s = e.atom, e.name
                        if e.kind.name == BOOLEAN:
                            lines.append(f"{q}({HYP}, N) :- {q}({GIVEN}, N), not set_entry__({n}, N, {s}).")
                            lines.append(f"{q}({HYP}, N) :- {doc}, set({n}, N, {s}, true)).")
                            lines.append(f"{q}({HYP}, new(I)) :- {doc}, add({n})), documents_entry({GIVEN}, I, {s}, true).")
                        else:
                            lines.append(f"{q}({HYP}, N, V) :- {q}({GIVEN}, N, V), not set_entry__({n}, N, {s}).")
                            lines.append(f"{q}({HYP}, N, V) :- {doc}, set({n}, N, {s}, V)).")
                            lines.append(f"{q}({HYP}, new(I), V) :- {doc}, add({n})), documents_entry({GIVEN}, I, {s}, V).")
                        lines.append(f"set_entry__({n}, N, {s}) :- {doc}, set({n}, N, {s}, _)).")
                else:
                    lines.append(f"{p}({HYP}, X) :- {p}({GIVEN}, X), not set__({n}).")
                    lines.append(f"{p}({HYP}, X) :- {doc}, set({n}, X)).")
                    lines.append(f"set__({n}) :- {doc}, set({n}, _)).")
            lines += ["#defined set__/1.", "#defined removed__/2.", "#defined set_entry__/3.", "#defined nonrepresentative__/1."]
            lines.append(f"{{ abduce(I) : abducible({GIVEN}, I) }}.")
            # a field (or an entry's field) is set to one value at most
            lines.append(f":- abduce(I), abduce(J), I != J, documents({GIVEN}, I, set(F, _)), documents({GIVEN}, J, set(F, _)).")
            lines.append(f":- abduce(I), abduce(J), I != J, documents({GIVEN}, I, set(F, N, S, _)), documents({GIVEN}, J, set(F, N, S, _)).")
            # one representative of keys no case can tell apart (the brands of one product)
            lines.append(f":- abduce(I), documents_entry({GIVEN}, I, _, K), nonrepresentative__(K).")
            lines.append(f":- abduce(I), documents({GIVEN}, I, add(_, K)), nonrepresentative__(K).")
            return "\n".join(lines)

        return self._cached("abduction", build)

    # --- two versions side by side ---------------------------------------------------

    def renamed(self, parts: Sequence[str], prefix: str, keep: set[Signature]) -> list[str]:
        """The given parts with every predicate but ``keep`` (the inputs) renamed with a prefix.

        Renaming walks every rule through clingo's AST (about a second for
        this KB), so the text is kept like the other derived programs: in
        this process, and on disk under the KB's digest and the arguments.
        """
        key = hashlib.sha256(repr((tuple(parts), prefix, sorted(keep))).encode()).hexdigest()[:24]
        text = self._renamed_texts.get(key)
        if text is None:
            text = self._renamed_texts[key] = self._cached(f"renamed-{key}", lambda: "\n".join(self._renamed(parts, prefix, keep)))
        return [text]

    def _renamed(self, parts: Sequence[str], prefix: str, keep: set[Signature]) -> list[str]:
        from clingox.ast import rename_symbolic_atoms

        lines = []
        for name in parts:
            if name == "space":
                statements = [*parse_text(self.space_text), *self.part(name)]
            elif name == "space_domains":
                statements = [*parse_text(self.space_domain_text), *self.part("space")]
            else:
                statements = self.part(name)
            for node in statements:
                kind = node.ast_type
                if kind in (ASTType.ShowSignature, ASTType.ShowTerm):
                    continue
                if kind == ASTType.Defined:
                    lines.append(str(node if (node.name, node.arity) in keep else node.update(name=prefix + node.name)))
                    continue
                renamed = rename_symbolic_atoms(node, lambda n: n if _keep_name(n, keep) else prefix + n)
                lines.append(str(_restore_kept(renamed, prefix, keep)))
        return lines


def _keep_name(name: str, keep: set[Signature]) -> bool:
    return any(name == n for n, _ in keep)


def _restore_kept(node: ast.AST, prefix: str, keep: set[Signature]) -> ast.AST:
    """rename_symbolic_atoms renames by name only: an input's name at another arity is renamed back."""
    return node


def compiled(kb: "KnowledgeBase") -> Compiled:
    """The compiled programs of a KB, built once per loaded KB."""
    return kb.derived("compiled", lambda: Compiled(kb))


def walk(node: ast.AST) -> Iterable[ast.AST]:
    """Every node below ``node`` (itself included), read only."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for key in current.child_keys:
            child = getattr(current, key)
            if child is None:
                continue
            if isinstance(child, ast.AST):
                stack.append(child)
            else:
                stack.extend(c for c in child if isinstance(c, ast.AST))


def constants_in_rule_bodies(statements: Iterable[ast.AST]) -> set[str]:
    """Constants named in the bodies of rules (not in facts): keys a rule treats apart."""
    found: set[str] = set()
    for node in statements:
        if node.ast_type != ASTType.Rule or not node.body:
            continue
        for lit in node.body:
            for n in walk(lit):
                if n.ast_type == ASTType.SymbolicTerm:
                    sym = n.symbol
                    if sym.type.name == "Function" and not sym.arguments:
                        found.add(sym.name)
                elif n.ast_type == ASTType.Function and not n.arguments:
                    found.add(n.name)
    return found


def rule_constants(kb: "KnowledgeBase") -> frozenset[str]:
    """:func:`constants_in_rule_bodies` of the whole program, built once per loaded KB and kept in the disk cache (no parse when it is there)."""
    import json

    from ..knowledge.diskcache import cached_text

    def build() -> str:
        return json.dumps(sorted(constants_in_rule_bodies(s.node for s in kb.statements)), separators=(",", ":"))

    return kb.derived("rule_constants", lambda: frozenset(str(c) for c in json.loads(cached_text("rule_constants", kb.digest, build))))
