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
- rules and tables of a policy version with no comment naming the policy
  section (``§``) they implement; a ``§`` comment in the framework, which
  every policy shares and which therefore cites none;
- across the versions of a tree: versions of one policy whose effective
  periods overlap or leave a gap, an effective-to before its
  effective-from, a folder not named by its policy and effective-from
  date, and two policies claiming the same drug and use on the same day
  with neither prevailing;
- the policy's text (``policy_text.py``): its declared SHA-256, every quotation
  found in it, every waiver; with ``--strict``, every passage of a strict
  section cited by a rule or waived;
- with ``--strict``, every row and cell of the tables a case depends on
  pinned by an example case or a property: deleted, or (a value its column
  holds) added, some example or property notices it (``mutation.py``).

A paragraph (lines between blank lines) may carry ``% check: reference`` to
say that its facts are reference data no rule reads (no "never used"
warning).
"""

from __future__ import annotations

import os
import re
import weakref
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import clingo
import clingo.ast as ast
from clingo.ast import ASTType

from ..asp.solving import MessageLog, new_control
from ..engine.program import Signature, dynamic_predicates, rule_atoms
from ..errors import CaseError, Diagnostic, KbError, KineretError, did_you_mean
from ..knowledge.base import KnowledgeBase, parse_version
from ..knowledge.layout import tree_root, version_folders
from ..knowledge.parse import rule_head
from ..knowledge.schema import ENTRIES
from ..templates import fill
from .kb_reading import SUPPRESS_UNUSED, KeyKinds, Paragraphs, declared_inputs, vocabulary_kinds
from .mutation import pinning_diagnostics
from .policy_text import SOURCE_READS, check_sources

# What the package itself reads from a KB, or defines for it (framework names).
PACKAGE_READS: set[Signature] = {
    ("policy", 2),
    ("effective_from", 1),
    ("effective_to", 1),
    ("policy_drug_name", 1),
    ("vocabulary", 2),
    ("key_group", 3),
    ("key_group_name", 3),
    ("criterion", 4),
    ("combinator", 2),
    ("reason_text", 2),
    ("note_text", 2),
    ("text", 2),
    ("decision_text", 2),
    ("route_text", 2),
    ("abducible", 1),
    ("documents", 2),
    ("documents_entry", 3),
    ("documentation_text", 4),
    ("documentation_value", 3),
    ("question", 1),
    ("entry_text", 2),
    ("evidence_text", 2),
    ("decision_echo", 1),
    ("input_field", 4),
    ("input_atom", 2),
    ("entry_field", 5),
    ("entry_atom", 3),
    ("field_role", 2),
    ("header_field", 3),
    ("kb_problem", 2),
    ("claim", 3),
    ("prevails_over", 1),
    ("version_defines", 3),
    ("library", 1),
    ("needs_library", 1),
    ("input_description", 2),
    ("entry_description", 3),
    ("key_name", 3),
    ("key_name_filler", 2),
    ("key_name_numbers", 1),
    ("key_narrows", 3),
    ("undetermined_text", 2),
    ("undetermined", 3),
    ("fhir_not_read", 2),
    ("needs_text", 2),
    # read by the schema and vocabulary commands
    ("output_format", 2),
    ("output_field", 3),
    ("key_detail", 4),
    # read by verify and diff from the property and space parts
    ("property", 2),
    ("counterexample", 0),
    ("witness", 1),
    ("expected_witness", 1),
    ("copy", 1),
    ("space_value", 2),
    ("space_entry_value", 3),
    ("space_entry_key", 2),
}
PACKAGE_READS |= SOURCE_READS  # the policy's text, its sections and waivers (policy_text.py)
PACKAGE_DEFINES: set[Signature] = {("abduce", 1), ("copy", 1), ("input_fact", 3), ("differs", 3)}


class CheckWordsError(RuntimeError):
    """check's own words cannot be read, not even from the KB packaged with the program: the installation is broken."""


_OWN_WORDS: "weakref.WeakKeyDictionary[KnowledgeBase, dict[str, str]]" = weakref.WeakKeyDictionary()
_PACKAGED_WORDS: list[dict[str, str]] = []


def check_words(kb: Optional[KnowledgeBase]) -> Callable[..., str]:
    """How check words a finding about ``kb``: ``w(key, **values)`` is text(key, ...) with its {placeholders} filled.

    The one place check reads its words (framework/words/check.lp). The
    KB it checks may be the one that is broken: its words are read only
    when it loaded (no file failed to parse, its vocabulary builds), and a
    key it lacks, or every key when it did not load (or ``kb`` is None: no
    KB was found), is read from the KB packaged with the program. When even
    that has no such key, :class:`CheckWordsError` says so: a finding is
    never printed without its words.
    """
    own: list[dict[str, str]] = []

    def w(key: str, /, **values: Any) -> str:
        if not own:
            own.append(_own_words(kb) if kb is not None else {})
        template = own[0].get(key)
        if template is None:
            template = _packaged_words().get(key)
        if template is None:
            raise CheckWordsError(f"the packaged KB has no text({key}, ...) for check to print a finding with (framework/words/check.lp): reinstall kineret-asp")
        return fill(template, values)

    return w


def _own_words(kb: KnowledgeBase) -> dict[str, str]:
    """A checked KB's words (text/2), read once; none when it did not load."""
    words = _OWN_WORDS.get(kb)
    if words is None:
        words = {}
        if not kb.errors:
            try:
                words = dict(kb.vocabulary.words)
            except KbError:
                pass  # check reports why, in the packaged words
        _OWN_WORDS[kb] = words
    return words


def _packaged_words() -> dict[str, str]:
    """The words of the KB packaged with the program (any of its versions: the framework's words are the same)."""
    if not _PACKAGED_WORDS:
        from ..knowledge.base import load_kb
        from ..knowledge.layout import default_kb_path

        root = default_kb_path()
        try:
            versions = version_folders(root)
            if not versions:
                raise CheckWordsError(f"the KB packaged with the program ({root}) holds no version: check has no words to print its findings with; reinstall kineret-asp")
            _PACKAGED_WORDS.append(dict(load_kb(versions[0].path).vocabulary.words))
        except (KineretError, OSError) as exc:
            raise CheckWordsError(f"the KB packaged with the program ({root}) does not load, so check has no words to print its findings with ({exc}); reinstall kineret-asp") from exc
    return _PACKAGED_WORDS[0]


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


def _check_sections(kb: KnowledgeBase, paras: Paragraphs) -> list[Diagnostic]:
    """A policy version's rules and tables name the section they encode; the framework cites no policy.

    The framework (``kb/framework/``) is shared by every policy: a ``§``
    citation there would quote one policy's text for all of them, so its
    comments are plain prose and a ``§`` comment in it is an error.
    """
    framework = {kb.display_path(f) for f in kb.framework_files}
    w = check_words(kb)
    out = []
    for s in kb.statements:
        if s.node.ast_type != ASTType.Rule or s.file in framework:
            continue
        file, line, col = _loc(s.node, s.file)
        if not paras.has_section(file, line):
            kind = w("check_kind_table_fact" if not s.node.body else "check_kind_rule")
            out.append(Diagnostic(file, line, col, "error", w("check_no_section", kind=kind), "section"))
    for file in sorted(framework):
        for number, line in enumerate(kb.texts.get(file, "").splitlines(), start=1):
            comment = line.lstrip()
            if comment.startswith("%") and comment.lstrip("%*").lstrip().startswith("§"):
                out.append(
                    Diagnostic(
                        file,
                        number,
                        len(line) - len(comment) + 1,
                        "error",
                        w("check_framework_cites"),
                        "section",
                    )
                )
    return out


def _check_predicates(kb: KnowledgeBase, occs: list[Occurrence], paras: Paragraphs, unread: frozenset[str] = frozenset()) -> list[Diagnostic]:
    """Predicates used but never defined, defined but never used.

    ``unread`` are the names a file that does not parse mentions: its rules
    were not read, so a predicate it defines or uses is not reported as
    missing or unused elsewhere (the syntax error is the one to fix).
    """
    out = []
    w = check_words(kb)
    inputs = declared_inputs(kb)
    declared = {(s.node.name, s.node.arity) for s in kb.statements if s.node.ast_type in (ASTType.Defined,)} | inputs
    shown = {(s.node.name, s.node.arity) for s in kb.statements if s.node.ast_type == ASTType.ShowSignature}
    defined = {o.sig for o in occs if o.role == "head"} | declared | PACKAGE_DEFINES
    # properties name case-dependent predicates with the copy as first argument
    dynamic = dynamic_predicates([s.node for s in kb.part("base")] + [s.node for s in kb.part("space")], inputs)
    defined |= {(name, arity + 1) for name, arity in dynamic}
    used = {o.sig for o in occs if o.role == "body"} | shown | PACKAGE_READS | set(vocabulary_kinds(kb))
    reported: set[tuple] = set()
    # what the version defines: in its folder, or in a library it includes
    own = {o.sig for o in occs if o.role == "head" and (_in_folder(o.file, kb.path) or o.file in kb.included)}
    missing: dict[Signature, tuple[str, str]] = {}
    for sig, words, file in _contract(kb):
        if sig not in own and sig[0] not in unread:
            missing.setdefault(sig, (words, file))
    for (name, arity), (words, file) in missing.items():  # reported once, at the version's folder, in the contract's words
        whose = w("check_contract_every") if file not in kb.included else w("check_contract_library", library=Path(file).stem)
        out.append(Diagnostic(kb.display_path(kb.path), 0, 0, "error", w("check_contract", name=name, arity=arity, whose=whose, words=words, file=_framework_relative(kb, file)), "contract"))
    if missing:  # what the framework derives from them is undefined too: the contract's errors say why
        reported |= {(o.sig, o.file, o.line) for o in occs if o.role == "body" and not _in_folder(o.file, kb.path)}
    names_by_arity: dict[int, list[str]] = defaultdict(list)
    for name, arity in defined:
        names_by_arity[arity].append(name)
    for o in occs:
        if o.sig[0] in unread:
            continue
        if o.role == "body" and o.sig not in defined and (o.sig, o.file, o.line) not in reported:
            reported.add((o.sig, o.file, o.line))
            hint = did_you_mean(o.sig[0], names_by_arity[o.sig[1]])
            hint = hint.replace("'?", f"/{o.sig[1]}'?") if hint else ""
            out.append(Diagnostic(o.file, o.line, o.column, "error", w("check_undefined", name=o.sig[0], arity=o.sig[1], hint=hint), "undefined"))
    first_def: dict[Signature, Occurrence] = {}
    for o in occs:
        if o.role == "head":
            first_def.setdefault(o.sig, o)
    for sig, o in sorted(first_def.items(), key=lambda kv: (kv[1].file, kv[1].line)):
        if sig in used or sig in declared or sig[0] in unread:
            continue
        if any(paras.suppressed(x.file, x.line) for x in occs if x.sig == sig and x.role == "head"):
            continue
        out.append(Diagnostic(o.file, o.line, o.column, "warning", w("check_unused", name=sig[0], arity=sig[1], marker=SUPPRESS_UNUSED), "unused"))
    return out


def _framework_relative(kb: KnowledgeBase, file: str) -> str:
    """A framework file's path from the tree's root (``framework/versions.lp``)."""
    try:
        return Path(os.path.relpath(Path(file).resolve(), kb.root.resolve())).as_posix()
    except (OSError, ValueError):
        return file


def _contract(kb: KnowledgeBase) -> list[tuple[Signature, str, str]]:
    """What the version must define, with the file that says so.

    The framework's version_defines/3 facts (framework/versions.lp), and
    those of each library the version includes: read from the parsed rules.
    """
    out = []
    for s in kb.statements:
        node = s.node
        if node.ast_type != ASTType.Rule or node.body:
            continue
        term = getattr(getattr(node.head, "atom", None), "symbol", None)
        if term is None or term.ast_type != ASTType.Function or term.name != "version_defines" or len(term.arguments) != 3:
            continue
        args = term.arguments
        if all(x.ast_type == ASTType.SymbolicTerm for x in args):
            name, arity, words = (x.symbol for x in args)
            if name.type == clingo.SymbolType.Function and arity.type == clingo.SymbolType.Number and words.type == clingo.SymbolType.String:
                out.append(((name.name, arity.number), words.string, s.file))
    return out


def _check_libraries(kb: KnowledgeBase) -> list[Diagnostic]:
    """Each library the version includes has the libraries it needs (its needs_library/1 facts) included too."""
    out = []
    w = check_words(kb)
    names = {Path(f).stem for f in kb.included}
    for s in kb.statements:
        if s.file not in kb.included:
            continue
        head = rule_head(s.node)
        if head is None or not head.fact or head.name != "needs_library" or len(head.args) != 1:
            continue
        needed = head.first_text
        if needed not in names:
            file, line, col = kb.included[s.file]
            out.append(
                Diagnostic(
                    file,
                    line,
                    col,
                    "error",
                    w("check_library_needs", library=Path(s.file).stem, needed=needed, file=_framework_relative(kb, s.file)),
                    "library",
                )
            )
    return out


def _in_folder(file: str, folder: Path) -> bool:
    """Whether a file (as occurrences name it) lies in a version's folder."""
    try:
        return Path(file).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def _check_keys(kb: KnowledgeBase) -> list[Diagnostic]:
    keys = {v: set(k) for v, k in kb.vocabulary.keys.items()}
    inference = KeyKinds(kb)
    w = check_words(kb)
    out = []
    defining = {(name, arity, 0) for name, arity in vocabulary_kinds(kb)}
    for s, terms in zip(inference.rules, inference._terms):
        for pos, _, name, line, col in terms:
            if name is None or pos in defining:
                continue
            kinds = inference.kinds.get(pos)
            if not kinds or name == "none":
                continue
            allowed = set().union(*(keys.get(k, set()) for k in kinds))
            if name not in allowed:
                file = s.file
                what = w("check_kinds_or").join(sorted(kinds))
                out.append(Diagnostic(file, line, col, "error", w("check_unknown_key", kinds=what, key=name, hint=did_you_mean(name, allowed)), "key"))
    return out


class _FactIndex:
    """Where facts ``name(first, ...)`` are written, built in one pass over the KB."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.facts: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
        self.rules: dict[str, tuple[str, int, int]] = {}
        for s in kb.statements:
            head = rule_head(s.node)
            if head is None:
                continue
            if not head.fact:
                self.rules.setdefault(head.name, (s.file, head.line, head.column))
            elif head.args:
                self.facts[(head.name, head.first_text)].append((s.file, head.line, head.column))

    def locations(self, name: str, first: str) -> list[tuple[str, int, int]]:
        found = self.facts.get((name, first))
        if found:
            return found
        if name in self.rules:
            return [self.rules[name]]
        return [(self.kb.display_path(self.kb.path), 0, 0)]


def _check_criteria(kb: KnowledgeBase) -> list[Diagnostic]:
    out = []
    w = check_words(kb)
    index = _FactIndex(kb)
    rows = kb.facts("criterion", 4)
    combinators = {str(c) for c, _ in kb.facts("combinator", 2)}
    by_id: dict[str, list[tuple]] = defaultdict(list)
    for cid, parent, rule, text in rows:
        by_id[str(cid)].append((parent, rule, text))
    children: dict[str, int] = defaultdict(int)
    for _cid, parent, _rule, _text in rows:
        if str(parent) != "none":
            children[str(parent)] += 1
    for cid in by_id:
        defs = by_id[cid]
        where = index.locations("criterion", cid)
        file, line, col = where[0]
        if len(defs) > 1:
            loc = where[1] if len(where) > 1 else where[0]
            out.append(Diagnostic(loc[0], loc[1], loc[2], "error", w("check_criterion_twice", criterion=cid, count=len(defs)), "criteria"))
        for parent, rule, text in defs:
            if not str(text).strip():
                out.append(Diagnostic(file, line, col, "error", w("check_criterion_no_words", criterion=cid), "criteria"))
            if str(parent) != "none" and str(parent) not in by_id:
                out.append(Diagnostic(file, line, col, "error", w("check_criterion_no_parent", criterion=cid, parent=parent), "criteria"))
            rule_name = rule[0] if isinstance(rule, tuple) else str(rule)
            if rule_name not in combinators:
                out.append(Diagnostic(file, line, col, "error", w("check_criterion_combinator", criterion=cid, rule=rule_name, combinators=", ".join(sorted(combinators))), "criteria"))
            if rule_name in ("all", "at_least") and not children[cid]:
                out.append(Diagnostic(file, line, col, "error", w("check_criterion_no_children", criterion=cid, rule=rule_name), "criteria"))
    # the policy's own checks: kb_problem(Name(Key), "message") is reported where Name(Key, ...) is written
    for about, message in kb.facts("kb_problem", 2):
        name, key = (about[0], str(about[1])) if isinstance(about, tuple) and len(about) >= 2 else (str(about), "")
        file, line, col = index.locations(name, key)[0]
        out.append(Diagnostic(file, line, col, "error", w("check_policy_problem", key=key, message=message) if key else str(message), "policy"))
    return out


def _check_documentation(kb: KnowledgeBase) -> list[Diagnostic]:
    """Every kind of abducible documentation says what it changes in a case (documents/2)."""
    abducible: dict[str, tuple[str, int, int]] = {}
    documented: set[str] = set()
    for s in kb.statements:
        head = rule_head(s.node)
        if head is None or head.name not in ("abducible", "documents"):
            continue
        functor = head.first_functor
        if functor is None:
            continue
        if head.name == "abducible" and len(head.args) == 1:
            abducible.setdefault(functor, (s.file, head.line, head.column))
        elif head.name == "documents" and len(head.args) == 2:
            documented.add(functor)
    out = []
    w = check_words(kb)
    for functor, (file, line, col) in sorted(abducible.items()):
        if functor not in documented:
            out.append(Diagnostic(file, line, col, "error", w("check_no_documents", kind=functor), "documentation"))
    return out


def _check_key_names(kb: KnowledgeBase) -> list[Diagnostic]:
    """Every other name of a key (key_name/3) names a key of a vocabulary, and no two keys share a name.

    A name is read as its key wherever a case gives a value of the
    vocabulary: a name shared by two keys would read one drug as another.
    """
    from ..knowledge.names import NameIndex

    keys = kb.vocabulary.keys
    index = _FactIndex(kb)
    w = check_words(kb)
    out = []
    rows: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for v, k, n in kb.facts("key_name", 3):
        where = index.locations("key_name", str(v))[0]
        if str(v) not in keys:
            out.append(Diagnostic(*where, "error", w("check_key_name_vocabulary", vocabulary=v, quoted=repr(str(v)), hint=did_you_mean(str(v), keys)), "key"))
        elif str(k) not in keys[str(v)]:
            out.append(
                Diagnostic(
                    *where,
                    "error",
                    w("check_key_name_key", vocabulary=v, key=k, name=repr(str(n)), quoted=repr(str(k)), quoted_vocabulary=repr(str(v)), hint=did_you_mean(str(k), keys[str(v)])),
                    "key",
                )
            )
        else:
            rows[str(v)].append((str(k), str(n)))
    for v, given in rows.items():
        built = NameIndex.build(keys[v], given, (), False, ())
        for name, key, other in built.clashes:
            out.append(Diagnostic(*index.locations("key_name", v)[0], "error", w("check_key_name_clash", vocabulary=v, key=key, name=repr(name), quoted_other=repr(other), other=other), "key"))
    return out


def _check_fhir_mapping(kb: KnowledgeBase, strict: bool) -> list[Diagnostic]:
    """Every input the rules read has a FHIR mapping, when the version reads FHIR at all.

    A field no ``fhir_value/4`` (or, for an entries list, ``fhir_entry/2``)
    fills is never given by a case read from a FHIR Bundle: a criterion that
    reads it is silently unmet for every such case. So is an entries list
    whose required entry field no ``fhir_entry_value/5`` reads (every entry
    is left out). A warning; with ``--strict`` an error.
    """
    unread = {str(f) for f, _ in kb.facts("fhir_not_read", 2)}  # inputs no record gives, on purpose
    values = {str(f) for f, *_ in kb.facts("fhir_value", 4)}
    entries = {str(lst) for lst, _ in kb.facts("fhir_entry", 2)}
    entry_values = {(str(lst), str(f)) for lst, f, *_ in kb.facts("fhir_entry_value", 5)}
    if not (values or entries):
        return []  # the version reads no FHIR: nothing to compare with
    severity = "error" if strict else "warning"
    w = check_words(kb)
    index = _FactIndex(kb)
    out = []
    for f in kb.schema.fields:
        if f.atom is None or f.name in unread:
            continue  # the rules never read it, or no FHIR record gives it on purpose
        file, line, col = index.locations("input_field", f.name)[0]
        if f.kind.name == ENTRIES:
            if f.name not in entries and f.name not in values:
                out.append(
                    Diagnostic(
                        file,
                        line,
                        col,
                        severity,
                        w("check_fhir_no_entry", input=f.name),
                        "fhir",
                    )
                )
                continue
            for e in f.entry_fields:
                if e.presence == "required" and (f.name, e.name) not in entry_values:
                    out.append(Diagnostic(file, line, col, severity, w("check_fhir_entry_field", input=f.name, field=e.name), "fhir"))
        elif f.name not in values:
            out.append(
                Diagnostic(
                    file,
                    line,
                    col,
                    severity,
                    w("check_fhir_no_value", input=f.name),
                    "fhir",
                )
            )
    return out


def _string_arg(node: ast.AST) -> Optional[str]:
    """The text of a string argument as written (None for anything else)."""
    if node.ast_type == ASTType.SymbolicTerm and node.symbol.type == clingo.SymbolType.String:
        return node.symbol.string
    return None


def _documented_values(kb: KnowledgeBase) -> dict[str, set[str]]:
    """For each kind of documentation, the values its words are filled with (from what its documents/2 rules change)."""
    out: dict[str, set[str]] = {}
    for s in kb.statements:
        head = rule_head(s.node)
        if head is None or head.name != "documents" or len(head.args) != 2 or head.first_functor is None:
            continue
        change = head.args[1]
        names = out.setdefault(head.first_functor, set())
        if change.ast_type != ASTType.Function:
            continue
        if change.name == "add" and len(change.arguments) == 1:
            lst = kb.schema.by_name.get(str(change.arguments[0]))
            names.update(e.name for e in (lst.entry_fields if lst is not None else ()))
        elif len(change.arguments) == 4:
            names.update(("value", "index", "entry"))
        elif len(change.arguments) == 2:
            names.add("value")
    return out


def _check_templates(kb: KnowledgeBase) -> list[Diagnostic]:
    """Every ``{placeholder}`` of a word template is one its template is filled with.

    A placeholder nothing fills is printed as written (``{feild} documented
    ...``): the words of text/2 are filled by the program (the names it
    passes are read from its source), those of documentation_text/4 with
    the values of the change their documents/2 rules make, and entry_text/2
    with the fields of the list's entries.
    """
    from ..templates import placeholders
    from .words_filled import filled_by_the_program

    documented = _documented_values(kb)
    entry_fields = {f.name: {e.name for e in f.entry_fields} for f in kb.schema.fields}
    w = check_words(kb)
    out = []

    def report(s: Any, arg: ast.AST, text: str, allowed: Optional[set[str] | frozenset[str]], what: str) -> None:
        if allowed is None:
            return
        unknown = [n for n in placeholders(text) if n not in allowed]
        if unknown:
            loc = arg.location.begin
            known = ", ".join("{" + n + "}" for n in sorted(allowed)) or w("check_template_none")
            out.append(
                Diagnostic(
                    s.file,
                    loc.line,
                    loc.column,
                    "error",
                    w("check_template_unfilled", what=what, unknown=", ".join("{" + n + "}" for n in unknown), known=known),
                    "words",
                )
            )

    for s in kb.statements:
        head = rule_head(s.node)
        if head is None or not head.fact:
            continue
        args = head.args
        if head.name == "text" and len(args) == 2:
            text = _string_arg(args[1])
            if text is not None:
                report(s, args[1], text, filled_by_the_program(head.first_text), w("check_template_text", key=head.first_text))
        elif head.name == "documentation_text" and len(args) == 4:
            kind = head.first_text
            for i, arg in enumerate(args[1:], start=1):
                text = _string_arg(arg)
                if text is None:
                    continue
                allowed = {"subject", "choice"} if i == 1 else documented.get(kind)
                part = w("check_template_sentence" if i == 1 else "check_template_choice" if i == 2 else "check_template_subject")
                report(s, arg, text, allowed, w("check_template_documentation", kind=kind, part=part))
        elif head.name == "entry_text" and len(args) == 2:
            text = _string_arg(args[1])
            if text is not None:
                report(s, args[1], text, entry_fields.get(head.first_text), w("check_template_entry", list=head.first_text))
    return out


def _check_grounding(kb: KnowledgeBase) -> list[Diagnostic]:
    """Ground the KB without a case: clingo's own errors and warnings."""
    import tempfile

    from ..knowledge.tree_files import blank_includes

    log = MessageLog(kb.display_path(kb.path))
    control = new_control([], log, message_limit=200, warnings="all")
    names: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="kineret-asp-check-") as tmp:
        try:  # the texts the loader read (never the files again: they may have changed, or be links)
            for i, f in enumerate(kb.files):
                shown = kb.display_path(f)
                copy = os.path.join(tmp, f"{i}.lp")
                with open(copy, "w", encoding="utf-8") as out_file:
                    out_file.write(blank_includes(kb.texts.get(shown, "")))
                names[copy] = shown
                control.load(copy)
            control.add("base", [], _inputs_defined(kb))
            control.ground([("base", [])])
        except RuntimeError:
            pass
    out = []
    for d in log.diagnostics:
        if "does not occur in any rule head" in d.message:
            continue  # reported, with a suggestion, as "used but never defined"
        sev = "error" if d.severity == "error" else "warning"
        out.append(Diagnostic(names.get(d.file, d.file), d.line, d.column, sev, d.message, "clingo"))
    return out


def _inputs_defined(kb: KnowledgeBase) -> str:
    try:
        return kb.schema.defined_text()
    except KbError:
        return ""


@dataclass
class CheckReport:
    diagnostics: list[Diagnostic]
    words: Optional[Callable[..., str]] = dataclass_field(default=None, compare=False, repr=False)  # how check words a line about this KB (its own words when it loaded)

    def summary(self, folder: Path) -> str:
        """The line that ends check's text output: the counts, and the KB checked (a version folder within its tree, or the tree)."""
        w = self.words or check_words(None)
        root, version = tree_root(folder)
        checked = w("check_summary_version", version=version.relative_to(root).as_posix(), root=root) if version is not None else str(root)
        return w("check_summary", errors=self.errors, warnings=self.warnings, kb=checked)

    @property
    def errors(self) -> int:
        return sum(d.severity == "error" for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity == "warning" for d in self.diagnostics)

    def to_dict(self) -> dict:
        return {"errors": self.errors, "warnings": self.warnings, "diagnostics": [d.to_dict() for d in self.diagnostics]}


def check_version(kb: KnowledgeBase, strict: bool = False) -> list[Diagnostic]:
    """Every check on one version's program (the framework's files and the version's).

    With ``strict``, a passage of the policy's text that a strict section
    holds and that no rule cites nor the KB waives is an error.
    """
    diags = list(kb.errors)
    diags.extend(d for d in kb.messages if d.severity != "info")
    paras = Paragraphs(kb.texts)
    occs = occurrences(kb)
    diags += _check_sections(kb, paras)
    diags += _check_predicates(kb, occs, paras, _unread_names(kb))
    diags += _check_libraries(kb)
    diags += _check_documentation(kb)
    grounding = _check_grounding(kb) if not kb.errors else []
    diags += grounding
    if not kb.errors and not any(d.severity == "error" for d in grounding):
        try:
            kb.vocabulary
            kb.schema
        except KbError as exc:
            diags += exc.diagnostics
        else:
            diags += _check_criteria(kb)
            diags += _check_keys(kb)
            diags += _check_fhir_mapping(kb, strict)
            diags += _check_key_names(kb)
            diags += _check_templates(kb)
            diags += check_sources(kb, strict)
            if strict and not any(d.severity == "error" for d in diags):
                diags += pinning_diagnostics(kb)  # every table row and cell a case depends on: pinned by an example or property
    return diags


_NAME = re.compile(r"[a-z_][A-Za-z0-9_']*")


def _unread_names(kb: KnowledgeBase) -> frozenset[str]:
    """Every name the files that do not parse mention (their rules were not read)."""
    broken = {d.file for d in kb.errors}
    names: set[str] = set()
    for file in broken:
        names.update(_NAME.findall(kb.texts.get(file, "")))
    return frozenset(names)


def _iso(text: Optional[str]) -> bool:
    from ..cases.versions import iso_date

    return text is None or iso_date(text) is not None


def _written_at(kb: KnowledgeBase, name: str) -> tuple[str, int, int]:
    """Where a version writes ``name(...)``, or declares the library that does (its folder when nowhere)."""
    return kb.defined_at(name) or (kb.display_path(kb.path), 0, 0)


def check_versions(kbs: Iterable[KnowledgeBase]) -> list[Diagnostic]:
    """Checks across the versions of a tree: folders, periods (overlaps, gaps, reversed), and claims.

    Every version's period must be where a date of service finds it: one
    version of a policy in force on any day from the first version's start,
    and two policies claiming the same request on the same day only when
    one prevails over the other (or a case could not be decided without
    naming its policy).
    """
    from ..cases.versions import claims, prevails_over, shift

    usable: list[KnowledgeBase] = []
    out: list[Diagnostic] = []
    for kb in kbs:
        if kb.errors:
            continue
        try:
            ident = kb.identity
        except KbError:
            continue  # reported by the version's own checks
        w = check_words(kb)
        start, end = _written_at(kb, "effective_from"), _written_at(kb, "effective_to")
        if not (_iso(ident.effective_from) and _iso(ident.effective_to)):
            bad = ident.effective_from if not _iso(ident.effective_from) else ident.effective_to
            out.append(Diagnostic(*(start if bad == ident.effective_from else end), "error", w("check_not_a_date", value=repr(bad)), "versions"))
            continue
        if kb.path.parent.name != ident.policy:
            out.append(
                Diagnostic(
                    *_written_at(kb, "policy"),
                    "error",
                    w("check_policy_folder", policy=ident.policy, folder=kb.path.parent.name),
                    "versions",
                )
            )
        if kb.path.name != ident.effective_from:
            out.append(Diagnostic(*start, "error", w("check_date_folder", effective=ident.effective_from, folder=kb.path.name), "versions"))
        if ident.effective_to is not None and ident.effective_to < ident.effective_from:
            out.append(Diagnostic(*end, "error", w("check_reversed_period", end=ident.effective_to, effective=ident.effective_from), "versions"))
            continue
        schema_fields = _schema_fields(kb)
        for drug, field, value in claims(kb):
            if schema_fields is not None and field not in schema_fields:
                out.append(
                    Diagnostic(
                        *_written_at(kb, "claim"),
                        "error",
                        w("check_claim_field", drug=drug, field=field, value=value, quoted=repr(field), hint=did_you_mean(field, schema_fields)),
                        "versions",
                    )
                )
        usable.append(kb)
    by_policy: dict[str, list[KnowledgeBase]] = defaultdict(list)
    for kb in usable:
        by_policy[kb.identity.policy].append(kb)
    for pid, versions in sorted(by_policy.items()):
        versions.sort(key=lambda k: (k.identity.effective_from, k.folder))
        for a, b in zip(versions, versions[1:]):
            x, y = a.identity, b.identity
            w = check_words(a)
            where = _written_at(a, "effective_to" if x.effective_to else "effective_from")
            if x.effective_to is None or x.effective_to >= y.effective_from:
                out.append(Diagnostic(*where, "error", w("check_overlap", policy=pid, period=x.period, next_period=y.period, folder=b.folder, end=shift(y.effective_from, -1)), "versions"))
            elif shift(x.effective_to, 1) < y.effective_from:
                out.append(
                    Diagnostic(
                        *where,
                        "error",
                        w("check_gap", policy=pid, first=shift(x.effective_to, 1), last=shift(y.effective_from, -1), period=x.period, next_period=y.period),
                        "versions",
                    )
                )
    out += _check_claims(usable, claims, prevails_over)
    return out


def _schema_fields(kb: KnowledgeBase) -> Optional[list[str]]:
    try:
        return [f.name for f in kb.schema.fields]
    except KbError:
        return None


def _check_claims(kbs: list[KnowledgeBase], claims: Any, prevails_over: Any) -> list[Diagnostic]:
    """Two policies claiming the same drug and use on a common day, neither prevailing over the other."""
    out = []
    for i, a in enumerate(kbs):
        for b in kbs[i + 1 :]:
            x, y = a.identity, b.identity
            if x.policy == y.policy or x.policy in prevails_over(b) or y.policy in prevails_over(a):
                continue
            first = max(x.effective_from, y.effective_from)
            last = min(d for d in (x.effective_to, y.effective_to, "9999-12-31") if d is not None)
            if first > last:
                continue
            shared = sorted(set(claims(a)) & set(claims(b)))
            uses_a, uses_b = {(f, v): d for d, f, v in claims(a)}, {(f, v): d for d, f, v in claims(b)}
            other_drugs = sorted(u for u in set(uses_a) & set(uses_b) if uses_a[u] != uses_b[u])
            if other_drugs:  # the same use for two drugs: only a request naming its drug can be routed
                later = b if (y.effective_from, b.folder) >= (x.effective_from, a.folder) else a
                other = a if later is b else b
                w = check_words(later)
                which = ", ".join(f"{f} {v}" for f, v in other_drugs[:5]) + (w("check_and_more", count=len(other_drugs) - 5) if len(other_drugs) > 5 else "")
                mine, theirs = (uses_b, uses_a) if later is b else (uses_a, uses_b)
                out.append(
                    Diagnostic(
                        *_written_at(later, "claim"),
                        "warning",
                        w(
                            "check_claims_for_two_drugs",
                            policy=later.identity.policy,
                            period=later.identity.period,
                            uses=which,
                            drug=mine[other_drugs[0]],
                            other_policy=other.identity.policy,
                            other_period=other.identity.period,
                            other_drug=theirs[other_drugs[0]],
                            first=first,
                        ),
                        "versions",
                    )
                )
            if not shared:
                continue
            later = b if (y.effective_from, b.folder) >= (x.effective_from, a.folder) else a
            other = a if later is b else b
            w = check_words(later)
            uses = ", ".join(f"{field} {value}" for _, field, value in shared[:5]) + (w("check_and_more", count=len(shared) - 5) if len(shared) > 5 else "")
            drugs = ", ".join(sorted({d for d, _, _ in shared}))
            out.append(
                Diagnostic(
                    *_written_at(later, "claim"),
                    "error",
                    w(
                        "check_claims_twice",
                        policy=later.identity.policy,
                        period=later.identity.period,
                        other_policy=other.identity.policy,
                        other_period=other.identity.period,
                        drugs=drugs,
                        uses=uses,
                        first=first,
                    ),
                    "versions",
                )
            )
    return out


def check_routing(root: Path) -> list[Diagnostic]:
    """In a tree of several policies, each example case the tree would route to another policy than its folder's, or refuse (a warning at the case)."""
    from ..cases.load import load
    from ..cases.versions import Chooser
    from .example_cases import _misrouted, discover, example_folders

    out = []
    try:
        chooser = Chooser.of(root)
    except (KbError, CaseError):
        return []  # the versions' own errors say why
    for path in discover(example_folders(chooser)):
        try:
            choice = load(path, chooser, by_folder=True).choice
        except CaseError:
            continue  # `test` reports a case that is not valid
        why = _misrouted(path, str(path), chooser, choice)
        if why is not None:
            out.append(Diagnostic(str(path), 0, 0, "warning", check_words(choice.kb)("check_misrouted", why=why), "routing"))
    return out


def check_kb(path: Optional[Path | str] = None, strict: bool = False) -> CheckReport:
    """Run every check on a KB: every version of a tree, or the one version a folder holds."""
    from ..knowledge.layout import _check_folder, default_kb_path

    folder = Path(path) if path is not None else default_kb_path()
    try:
        _check_folder(folder)
        root, version = tree_root(folder.resolve())
        versions = [version] if version is not None else [v.path for v in version_folders(root)]
        if not versions:
            raise KbError([Diagnostic(str(folder), 0, 0, "error", check_words(None)("check_not_a_kb"))])
        diags: list[Diagnostic] = []
        parsed = [parse_version(root, v, strict=False) for v in versions]
        for kb in parsed:
            diags += check_version(kb, strict)
        if version is None:  # the whole tree: its versions side by side
            diags += check_versions(parsed)
            if len({kb.identity.policy for kb in parsed}) > 1:
                diags += check_routing(root)
    except KbError as exc:
        return CheckReport(exc.diagnostics)
    syntax = {d for kb in parsed for d in kb.errors}  # listed first: fix them before anything else
    unique = sorted(set(diags), key=lambda d: (d not in syntax, d.file, d.line, d.column, d.severity, d.message))
    return CheckReport(unique, check_words(parsed[-1]))
