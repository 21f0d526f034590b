"""kineret-asp: Cigna Coverage Policy IP0243 (anakinra, Kineret) as clingo rules.

>>> from kineret_asp import evaluate
>>> d = evaluate({"indication": "stills_disease", "prescriber_specialties": ["rheumatology"]})
>>> d.decision, d.authorization_months
('approved', 12)
"""
from .abduction import Missing, Option, Requirement, missing
from .api import CaseUndecided, evaluate, evaluate_many
from .changes import Change
from .case import Case, GeneticTest, MedicationEntry, load_case
from .decision import CriterionResult, Decision, Note, Reason
from .errors import CaseError, Diagnostic, KbError, KineretError
from .knowledge import KnowledgeBase, load_kb
from .whatif import WhatIf, what_if

__all__ = [
    "Case",
    "Change",
    "Missing",
    "Option",
    "Requirement",
    "WhatIf",
    "missing",
    "what_if",
    "CaseError",
    "CaseUndecided",
    "CriterionResult",
    "Decision",
    "Diagnostic",
    "GeneticTest",
    "KbError",
    "KineretError",
    "KnowledgeBase",
    "MedicationEntry",
    "Note",
    "Reason",
    "evaluate",
    "evaluate_many",
    "load_case",
    "load_kb",
]
__version__ = "0.1.0"
