"""kineret-asp: Cigna Coverage Policy IP0243 (anakinra, Kineret) as clingo rules.

>>> from kineret_asp import evaluate
>>> d = evaluate({"indication": "stills_disease", "prescriber_specialties": ["rheumatology"]})
>>> d.decision, d.authorization_months
('approved', 12)

Names are imported on first use, so that the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "evaluate": "api",
    "evaluate_many": "api",
    "CaseUndecided": "api",
    "batch_evaluate": "batch.run",
    "missing": "explain.missing",
    "Missing": "explain.missing",
    "Option": "explain.missing",
    "Requirement": "explain.missing",
    "what_if": "explain.whatif",
    "WhatIf": "explain.whatif",
    "Change": "cases.changes",
    "Case": "cases.case",
    "GeneticTest": "cases.case",
    "MedicationEntry": "cases.case",
    "load_case": "cases.load",
    "CriterionResult": "decisions.decision",
    "Decision": "decisions.decision",
    "Note": "decisions.decision",
    "Reason": "decisions.decision",
    "CaseError": "errors",
    "Diagnostic": "errors",
    "KbError": "errors",
    "KineretError": "errors",
    "KnowledgeBase": "knowledge.base",
    "load_kb": "knowledge.base",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .api import CaseUndecided, evaluate, evaluate_many
    from .batch.run import batch_evaluate
    from .cases.case import Case, GeneticTest, MedicationEntry
    from .cases.changes import Change
    from .cases.load import load_case
    from .decisions.decision import CriterionResult, Decision, Note, Reason
    from .errors import CaseError, Diagnostic, KbError, KineretError
    from .explain.missing import Missing, Option, Requirement, missing
    from .explain.whatif import WhatIf, what_if
    from .knowledge.base import KnowledgeBase, load_kb


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kineret_asp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
