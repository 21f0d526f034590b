"""Cases written as facts of the KB's input predicates (``.lp`` case files).

An ``.lp`` case file is untrusted data, never program text: it is read by
:mod:`kineret_asp.asp.fact_files`, a strict reader of flat ground facts that clingo
never sees, against the input predicates the KB's schema declares. The facts
become the same dict a JSON case would be, and go through the same
validator; an error names the line and column where the offending fact was
written.
"""

from __future__ import annotations

from pathlib import Path

from ..asp.fact_files import MAX_LP_BYTES, ArgSpec, LpFactError, read_lp_file
from ..errors import CaseError
from ..knowledge.base import KnowledgeBase
from ..knowledge.schema import DATE, DECIMAL, INTEGER, KEY, NAME, OPEN_KEY, CaseSchema
from .atoms import data_from_atoms
from .case import Case
from .files import reading_error
from .validation import validate


def lp_specs(schema: CaseSchema) -> dict[tuple[str, int], tuple[ArgSpec, ...]]:
    """What the reader accepts for each input predicate: the shape of each argument.

    Keys are any constant here and numbers any whole number clingo can
    hold: the schema's validator checks vocabularies and ranges, with the
    same messages as for JSON.
    """
    out = {}
    for signature, args in schema.input_predicates.items():
        specs = []
        for arg in args:
            if arg.index:
                specs.append(ArgSpec("index", minimum=arg.kind.minimum, maximum=arg.kind.maximum, label="an entry number"))
            elif arg.kind.name == KEY:
                specs.append(ArgSpec("constant", label=f"{schema.noun(arg.kind.vocabulary or '')} key"))
            elif arg.kind.name == OPEN_KEY:
                specs.append(ArgSpec("constant", open=True, label=f"{schema.noun(arg.kind.vocabulary or '')} key or name"))
            elif arg.kind.name in (INTEGER, DATE):
                specs.append(ArgSpec("integer", label="a whole number"))
            elif arg.kind.name == DECIMAL:  # the value times 10**places, as the rules read it
                specs.append(ArgSpec("integer", label=f"a whole number (the value times {10**arg.kind.places})"))
            elif arg.kind.name == NAME:
                specs.append(ArgSpec("name", label=f"{schema.noun(arg.kind.vocabulary or '')} name"))
            else:
                specs.append(ArgSpec("string", label="a string"))
        out[signature] = tuple(specs)
    return out


def read_lp_case(path: Path, shown: str, kb: KnowledgeBase, max_bytes: int = MAX_LP_BYTES) -> Case:
    """Read and validate a case written as facts."""
    schema = kb.schema
    specs = kb.derived("lp_specs", lambda: lp_specs(schema))
    try:
        facts = read_lp_file(path, specs, max_bytes=max_bytes)
    except LpFactError as exc:
        where = f"{shown}:{exc.line}:{exc.column}" if exc.line else shown
        raise CaseError(where, "", exc.message) from None
    except OSError as exc:
        raise reading_error(exc, shown) from None
    atoms = [((f.predicate, *f.args), f"{shown}:{f.line}:{f.column}") for f in facts]
    data, places = data_from_atoms(schema, atoms, shown)
    try:
        return validate(schema, data, shown)
    except CaseError as exc:
        raise CaseError.many([_located(e, places) for e in exc.errors]) from None


def _located(error: CaseError, places: dict[str, str]) -> CaseError:
    """An error on a field path, moved to the line where that field was written."""
    path = error.path
    while path:
        if path in places:
            return CaseError(places[path], error.path, error.message)
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return error
