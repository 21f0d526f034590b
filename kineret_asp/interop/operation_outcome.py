"""FHIR errors: an OperationOutcome with the HTTP status FHIR's RESTful create uses.

Every FHIR-facing endpoint (CDS Hooks services, the Questionnaire and its
operations) answers a problem with an OperationOutcome instead of the JSON
API's ``{"errors": [lines]}``: 400 for a body that is not JSON or not valid
FHIR or CDS Hooks content (Da Vinci CRD hook-13, DTR spec-147), 422 for one
that is valid but breaks a rule of the guide, 412 when the data a decision
needs cannot be had, 401, 404, 413, 503 and 504 as their names say. Each
issue names where (``expression``) and what (``diagnostics``): the same
one-line messages the command line prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from ..errors import CaseError

OPERATION_OUTCOME = "OperationOutcome"
FHIR_JSON = "application/fhir+json"

# FHIR R4 IssueType codes (hl7.org/fhir/R4/valueset-issue-type.html), by the HTTP status they go with
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    412: "incomplete",
    413: "too-long",
    422: "business-rule",
    500: "exception",
    503: "transient",
    504: "timeout",
}


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: severity, type, where and what."""

    diagnostics: str
    expression: Optional[str] = None
    code: Optional[str] = None  # the IssueType; by default the one of the status
    severity: str = "error"

    def to_dict(self, status: int) -> dict:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code or ISSUE_CODES.get(status, "processing"), "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = [self.expression]
        return out


@dataclass
class FhirProblem(Exception):
    """A FHIR-facing request refused: its status and the issues its OperationOutcome lists."""

    status: int
    issues: list[Issue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.status)

    def __reduce__(self):  # picklable: a worker process hands it back
        return (type(self), (self.status, self.issues))

    @classmethod
    def of(cls, status: int, diagnostics: str, expression: Optional[str] = None, code: Optional[str] = None) -> "FhirProblem":
        return cls(status, [Issue(diagnostics, expression, code)])

    @classmethod
    def from_case_error(cls, exc: CaseError, status: int = 400, code: Optional[str] = None) -> "FhirProblem":
        """A CaseError's lines as issues: the path as the expression, the whole line as the diagnostics."""
        return cls(status, [Issue(e.line(), e.path or None, code) for e in exc.errors])

    def resource(self) -> dict:
        return operation_outcome(self.issues, self.status)


def operation_outcome(issues: Iterable[Issue], status: int) -> dict:
    """An OperationOutcome resource listing ``issues``."""
    return {"resourceType": OPERATION_OUTCOME, "issue": [i.to_dict(status) for i in issues] or [Issue("").to_dict(status)]}


def lines_outcome(status: int, lines: Sequence[str]) -> dict:
    """The JSON API's error lines as an OperationOutcome (one issue a line)."""
    return operation_outcome([Issue(line) for line in lines], status)


def is_outcome(value: Any) -> bool:
    """Whether decoded JSON is an OperationOutcome (a prefetch a client could not satisfy)."""
    return isinstance(value, dict) and value.get("resourceType") == OPERATION_OUTCOME
