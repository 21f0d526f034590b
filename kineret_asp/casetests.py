"""Example cases as tests: every case file with an ``expect`` block.

A case file (JSON) may carry what the policy says its decision must be::

    "expect": {"decision": "criteria_not_met", "unmet": ["3", "3.C"],
               "authorization_months": null, "reasons": [], "route": "clinical_review",
               "met": ["3.B"]}

Every key is optional. :func:`run_case_tests` decides each case with a KB
and compares; :class:`Coverage` counts, for every criterion, the cases in
which it was met and unmet.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from .case import Case
from .decision import Decision
from .errors import CaseError, did_you_mean
from .knowledge import CASES, display_path

EXPECT_KEYS = ("decision", "unmet", "authorization_months", "reasons", "route", "met")


@dataclass
class CaseTestResult:
    """The outcome of one example case."""

    path: str
    case_id: Optional[str]
    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    error: Optional[str] = None
    decision: Optional[Decision] = None

    @property
    def passed(self) -> bool:
        return self.error is None and not self.differences

    def to_dict(self) -> dict:
        p = self.decision.provenance if self.decision is not None else None
        return {
            "path": self.path,
            "id": self.case_id,
            "version": f"{p.policy} {p.version}" if p is not None else None,
            "passed": self.passed,
            "error": self.error,
            "differences": {k: {"expected": e, "actual": a} for k, (e, a) in self.differences.items()},
        }


@dataclass
class Coverage:
    """For every criterion id of one version, in how many cases it applied and was met, or unmet.

    Criterion ids are a version's own: ``1.A.i`` may be one syndrome in one
    version and another in the next, so cases count only toward the
    version that decided them.
    """

    met: dict[str, int]
    unmet: dict[str, int]
    version: str = ""  # "IP0243 2024-06-01..2024-12-31"
    folder: str = ""  # policies/IP0243/2024-06-01

    @classmethod
    def empty(cls, criterion_ids: Iterable[str], version: str = "", folder: str = "") -> "Coverage":
        ids = list(criterion_ids)
        return cls({i: 0 for i in ids}, {i: 0 for i in ids}, version, folder)

    def add(self, decision: Decision) -> None:
        for cid, is_met in decision.statuses().items():
            table = self.met if is_met else self.unmet
            table[cid] = table.get(cid, 0) + 1

    def not_both_ways(self) -> list[str]:
        return [c for c in self.met if not (self.met[c] and self.unmet.get(c, 0))]

    def to_dict(self) -> dict:
        return {
            "criteria": [{"id": c, "met": self.met[c], "unmet": self.unmet.get(c, 0)} for c in self.met],
            "not_exercised_both_ways": self.not_both_ways(),
        }


@dataclass
class VersionCoverage:
    """The coverage of each version whose cases ran, in the tree's order."""

    versions: list[Coverage]

    def of(self, label: str) -> Coverage:
        return next(c for c in self.versions if c.version == label)

    def not_both_ways(self) -> list[str]:
        """Criteria not exercised both ways: ids for one version; ``version id`` when several ran."""
        if len(self.versions) == 1:
            return self.versions[0].not_both_ways()
        return [f"{c.version} {cid}" for c in self.versions for cid in c.not_both_ways()]

    def to_dict(self) -> dict:
        """Each version's coverage; ``criteria`` and ``not_exercised_both_ways`` as before for one version (with the version in each row when several ran)."""
        several = len(self.versions) > 1
        rows = [{**row, **({"version": c.version} if several else {})} for c in self.versions for row in c.to_dict()["criteria"]]
        return {
            "criteria": rows,
            "not_exercised_both_ways": self.not_both_ways(),
            "versions": [{"version": c.version, "folder": c.folder, **c.to_dict()} for c in self.versions],
        }


@dataclass
class CaseTestReport:
    results: list[CaseTestResult]
    coverage: VersionCoverage
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed


def discover(paths: Sequence[Path]) -> list[Path]:
    """Case files (``.json``) under the given files or folders, sorted; FHIR Bundles in folders left out."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(x for x in p.rglob("*.json") if x.is_file() and not _fhir_file(x)))
        else:
            found.append(p)
    return found


def _fhir_file(path: Path) -> bool:
    """Whether a file holds a FHIR resource (an example Bundle beside its case twin), not a case."""
    from .fhir import is_fhir

    try:
        return is_fhir(json.loads(path.read_bytes()))
    except (OSError, ValueError, RecursionError):
        return False


def compare(expect: dict, decision: Decision) -> dict[str, tuple[Any, Any]]:
    """The expected values that the decision does not have, with the actual ones."""
    diffs: dict[str, tuple[Any, Any]] = {}
    actual = {
        "decision": decision.decision,
        "authorization_months": decision.authorization_months,
        "route": decision.route,
        "unmet": list(decision.unmet),
        "reasons": [r.id for r in decision.reasons],
        "met": [c for c, m in decision.statuses().items() if m],
    }
    for key, want in expect.items():
        got = actual[key]
        if key in ("unmet", "reasons"):
            if sorted(want) != sorted(got):
                diffs[key] = (want, got)
        elif key == "met":
            missing = [c for c in want if c not in got]
            if missing:
                diffs[key] = (want, [c for c in want if c in got])
        elif want != got:
            diffs[key] = (want, got)
    return diffs


def check_expect(expect: Any, source: str) -> dict:
    if not isinstance(expect, dict):
        raise CaseError(source, "expect", "expected an object")
    for k in expect:
        if k not in EXPECT_KEYS:
            raise CaseError(source, f"expect.{k}", f"unknown expectation{did_you_mean(k, EXPECT_KEYS)}; expected one of {', '.join(EXPECT_KEYS)}")
    for k in ("unmet", "reasons", "met"):
        if k in expect and not (isinstance(expect[k], list) and all(isinstance(x, str) for x in expect[k])):
            raise CaseError(source, f"expect.{k}", "expected a list of ids (strings)")
    return expect


def example_folders(kb: Any = None) -> list[Path]:
    """The ``cases/`` folder of every version of a KB (of the one version a KnowledgeBase or version folder names).

    Found from the KB, not from the working folder: the same from any
    folder, and for an installed package (its KB ships its cases).
    """
    from .versions import Chooser

    chooser = kb if isinstance(kb, Chooser) else Chooser.of(kb)
    return [v.path / CASES for v in chooser.versions() if (v.path / CASES).is_dir()]


def run_case_tests(paths: Sequence[Path], kb: Any = None) -> CaseTestReport:
    """Decide every case file with an expect block and compare.

    Each case is decided by the version chosen for it (its date of service,
    else the version folder it is kept in, else the latest); a
    KnowledgeBase or a version folder decides every case.
    """
    from .api import decide_many
    from .versions import Chooser

    chooser = kb if isinstance(kb, Chooser) else Chooser.of(kb)
    results: list[CaseTestResult] = []
    skipped: list[str] = []
    runnable: list[tuple[str, Case, Any]] = []
    for path in discover(paths):
        shown = display_path(path)
        try:
            if path.suffix != ".lp" and _fhir_file(path):  # a FHIR Bundle has no expect block: skipped
                skipped.append(shown)
                continue
            case, choice = chooser.load(path, by_folder=True)
            if case.expect is None:
                skipped.append(shown)
                continue
            check_expect(case.expect, shown)
            runnable.append((shown, case, choice))
        except CaseError as exc:
            results.append(CaseTestResult(shown, None, error=exc.line()))
    used = set(id(c.kb) for _, _, c in runnable)
    versions = [v for v in chooser.versions() if id(v) in used] or [chooser.default()]
    versions += [c.kb for _, _, c in runnable if c.kb not in versions]
    coverages = {id(v): Coverage.empty(v.vocabulary.criteria, version_label(v), v.folder) for v in dict.fromkeys(versions)}
    decisions = list(decide_many([(c, choice) for _, c, choice in runnable])) if runnable else []
    for (shown, case, choice), decision in zip(runnable, decisions):
        coverages[id(choice.kb)].add(decision)
        results.append(CaseTestResult(shown, case.id, compare(dict(case.expect or {}), decision), decision=decision))
    results.sort(key=lambda r: r.path)
    return CaseTestReport(results, VersionCoverage(list(coverages.values())), skipped)


def version_label(kb: Any) -> str:
    """A version as the test report names it: its policy and effective period."""
    ident = kb.identity
    return f"{ident.policy} {ident.period}"


def format_report(report: CaseTestReport, show_coverage: bool = False) -> str:
    lines = []
    for r in report.results:
        if r.passed:
            lines.append(f"PASS {r.path}")
            continue
        lines.append(f"FAIL {r.path}" + (f" ({r.case_id})" if r.case_id else ""))
        if r.error:
            lines.append(f"     {r.error}")
        for key, (want, got) in r.differences.items():
            lines.append(f"     {key}: expected {json.dumps(want)}")
            lines.append(f"     {' ' * len(key)}  actual   {json.dumps(got)}")
            if isinstance(want, list) and isinstance(got, list):
                extra = [x for x in got if x not in want]
                missing = [x for x in want if x not in got]
                if missing:
                    lines.append(f"     {' ' * len(key)}  - missing {', '.join(missing)}")
                if extra:
                    lines.append(f"     {' ' * len(key)}  + extra   {', '.join(extra)}")
    if show_coverage:
        lines.append("")
        lines.append("Coverage (cases where the criterion applied: met / unmet)")
        for cov in report.coverage.versions:
            lines.append(f"{cov.version} ({cov.folder})")
            for cid in cov.met:
                flag = "" if cov.met[cid] and cov.unmet.get(cid, 0) else "   <- not exercised both ways"
                lines.append(f"  {cid:<10} met {cov.met[cid]:>3}  unmet {cov.unmet.get(cid, 0):>3}{flag}")
            gaps = cov.not_both_ways()
            lines.append(f"{len(cov.met) - len(gaps)} of {len(cov.met)} criteria exercised both ways" + (f"; not both ways: {', '.join(gaps)}" if gaps else ""))
    lines.append(f"{report.passed} passed, {report.failed} failed")
    return "\n".join(lines) + "\n"
