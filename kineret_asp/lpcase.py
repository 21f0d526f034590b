"""Cases written as facts in the KB's own case vocabulary (``.lp`` files).

Only ground facts of the case predicates (kb/case.lp) are accepted: a rule,
a directive or any other statement is an error at its ``file:line:col``, so
a case file can never add program text to the KB. The facts become the same
dict a JSON case would be and go through the same validation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import clingo
import clingo.ast as ast

from .case import Case, parse_case
from .errors import CaseError
from .knowledge import KnowledgeBase, MessageLog
from .terms import Const, to_value

# predicate/arity -> the JSON field it fills
_FIELDS = {
    ("case_indication", 1): "indication",
    ("case_plan", 1): "plan",
    ("case_request", 1): "request",
    ("case_specialty", 1): "prescriber_specialties",
    ("case_genetic_test", 3): "genetic_tests",
    ("case_history", 3): "medication_history",
    ("case_history_months", 2): "medication_history",
    ("case_history_sample", 1): "medication_history",
    ("case_current_medication", 1): "current_medications",
    ("case_beneficial_response", 0): "beneficial_response",
}


def _plain(value: Any) -> Any:
    if isinstance(value, Const):
        return str(value)
    return value


def parse_lp_case(raw: Union[bytes, str], source: str, kb: "KnowledgeBase | Path | str | None" = None) -> Case:
    """Read a case from case-vocabulary facts."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise CaseError(source, "", f"not UTF-8 text (byte {exc.start})") from None
    directive = first_directive(text)
    if directive is not None:
        line, column = directive
        raise CaseError(f"{source}:{line}:{column}", "", "directives (#include, #script, #show ...) are not allowed in a case file; only facts of the case vocabulary")
    log = MessageLog(source)
    nodes: list[ast.AST] = []
    try:
        ast.parse_string(text, nodes.append, logger=log, message_limit=20)
    except RuntimeError:
        first = log.errors()[0] if log.errors() else None
        where = f"{source}:{first.line}:{first.column}" if first else source
        raise CaseError(where, "", f"not valid clingo: {first.message if first else 'parsing failed'}") from None
    facts: list[tuple[tuple, str]] = []
    for node in nodes:
        kind = node.ast_type
        if kind in (ast.ASTType.Comment,) or (kind == ast.ASTType.Program and node.name == "base" and not node.parameters):
            continue
        loc = node.location.begin
        where = f"{source}:{loc.line}:{loc.column}"
        if kind != ast.ASTType.Rule or node.body or node.head.ast_type != ast.ASTType.Literal or node.head.sign != ast.Sign.NoSign or node.head.atom.ast_type != ast.ASTType.SymbolicAtom:
            raise CaseError(where, "", "only facts of the case vocabulary (case_indication/1, case_history/3, ...) are allowed in a case file")
        try:
            symbol = clingo.parse_term(str(node.head.atom.symbol))
        except RuntimeError:
            raise CaseError(where, "", "a case fact must be ground (no variables, no arithmetic)") from None
        if symbol.type != clingo.SymbolType.Function or (symbol.name, len(symbol.arguments)) not in _FIELDS:
            known = ", ".join(f"{n}/{a}" for n, a in _FIELDS)
            raise CaseError(where, "", f"unknown case fact {symbol}; expected one of {known}")
        facts.append(((symbol.name, *[to_value(a) for a in symbol.arguments]), where))
    return parse_case(facts_to_dict(facts, source), source, kb)


def first_directive(text: str) -> "tuple[int, int] | None":
    """Line and column of the first ``#`` outside strings and comments.

    Checked before parsing, because clingo's parser acts on ``#include``
    while it reads (it would open the named file).
    """
    i, line, col, n = 0, 1, 1, len(text)
    while i < n:
        c = text[i]
        if c == "%":
            if text.startswith("%*", i):
                end = text.find("*%", i + 2)
                end = n if end < 0 else end + 2
            else:
                end = text.find("\n", i)
                end = n if end < 0 else end
            chunk = text[i:end]
            line += chunk.count("\n")
            col = len(chunk) - chunk.rfind("\n") if "\n" in chunk else col + len(chunk)
            i = end
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            chunk = text[i:j + 1]
            line += chunk.count("\n")
            col = len(chunk) - chunk.rfind("\n") if "\n" in chunk else col + len(chunk)
            i = j + 1
            continue
        if c == "#":
            return line, col
        if c == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    return None


def facts_to_dict(facts: list[tuple[tuple, str]], source: str) -> dict:
    """Case-vocabulary atoms, each with where it was written, as a case dict (not yet validated)."""
    data: dict[str, Any] = {}
    entries: dict[Any, dict] = {}
    tests: dict[Any, dict] = {}
    lists = {"prescriber_specialties": [], "current_medications": []}
    for atom, where in facts:
        name, args = atom[0], [_plain(a) for a in atom[1:]]
        field = _FIELDS[(name, len(args))]
        if name in ("case_indication", "case_plan", "case_request"):
            if field in data and data[field] != args[0]:
                raise CaseError(where, field, f"given twice ({data[field]} and {args[0]}); a case has one {field}")
            data[field] = args[0]
        elif name in ("case_specialty", "case_current_medication"):
            lists[field].append(args[0])
        elif name == "case_beneficial_response":
            data["beneficial_response"] = True
        elif name == "case_genetic_test":
            tests[_index(args[0], where)] = {"gene": args[1], "result": args[2]}
        elif name == "case_history":
            entries.setdefault(_index(args[0], where), {}).update({"drug": args[1], "outcome": args[2]})
        elif name == "case_history_months":
            entries.setdefault(_index(args[0], where), {})["months"] = args[1]
        elif name == "case_history_sample":
            entries.setdefault(_index(args[0], where), {})["sample"] = True
    for n, entry in entries.items():
        if "drug" not in entry:
            raise CaseError(source, f"case_history({n},_,_)", "months or sample given for an entry with no case_history/3 fact")
    data.update({k: v for k, v in lists.items() if v})
    if tests:
        data["genetic_tests"] = [tests[k] for k in sorted(tests)]
    if entries:
        data["medication_history"] = [entries[k] for k in sorted(entries)]
    return data


def _index(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CaseError(where, "", f"an entry number must be an integer, got {value!r}")
    return value
