"""Reports for CI: ``check`` as SARIF 2.1.0 and ``test`` as JUnit XML.

A code-scanning service reads SARIF and puts each finding on its line of
the KB file; a CI server reads JUnit XML and lists every example case as a
passed or failed test. Both carry exactly what the text output says.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..safetext import safe_text

if TYPE_CHECKING:  # pragma: no cover
    from .check import CheckReport
    from .example_cases import CaseTestReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
RULE_WORDS = {
    "clingo": "clingo's own message (syntax, grounding)",
    "section": "a rule or table without a comment naming its policy section",
    "undefined": "a predicate used but never defined",
    "unused": "a predicate defined but never used",
    "key": "a key absent from the vocabulary tables",
    "criteria": "a criterion without words, parent or combination rule",
    "policy": "a problem the KB reports about itself",
    "documentation": "documentation that says nothing about what it changes",
    "kb": "the KB cannot be read",
    "pinned": "a table row or cell a case depends on that no example case or property notices changed (check --strict)",
    "mutant-survived": "a wrong edit of a rule or table that no example case or property notices (kineret-asp test --mutate)",
    "mutant-equivalent": "an edit of a rule or table that decides no case otherwise (kineret-asp test --mutate)",
}
LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def artifact_uri(file: str) -> str:
    """A file as a SARIF URI: relative to the current folder when it lies under it, with forward slashes."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_uri()
    return quote(path.as_posix().replace(os.sep, "/"), safe="/")


def sarif_log(report: "CheckReport") -> dict[str, Any]:
    """The check's findings as one SARIF 2.1.0 run (rules: the kinds of check)."""
    from .. import __version__

    codes = sorted({d.code or "kb" for d in report.diagnostics} | set(RULE_WORDS))
    index = {code: i for i, code in enumerate(codes)}
    rules = [{"id": code, "name": code, "shortDescription": {"text": RULE_WORDS.get(code, code)}} for code in codes]
    results = []
    for d in report.diagnostics:
        code = d.code or "kb"
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(d.file)}}
        if d.line > 0:
            physical["region"] = {"startLine": d.line, "startColumn": max(1, d.column)}
        results.append(
            {
                "ruleId": code,
                "ruleIndex": index[code],
                "level": LEVELS.get(d.severity, "note"),
                "message": {"text": safe_text(d.message)},
                "locations": [{"physicalLocation": physical}],
            }
        )
    driver = {"name": "kineret-asp", "version": __version__, "rules": rules}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [{"tool": {"driver": driver}, "columnKind": "unicodeCodePoints", "results": results}]}


def junit_xml(report: "CaseTestReport", suite: str = "kineret-asp test") -> str:
    """The example cases as JUnit XML: one testcase per case file, failure or error with its details."""
    failures = sum(1 for r in report.results if not r.passed and r.error is None)
    errors = sum(1 for r in report.results if r.error is not None)
    root = ET.Element("testsuites", name=suite, tests=str(len(report.results)), failures=str(failures), errors=str(errors))
    tests = ET.SubElement(root, "testsuite", name=suite, tests=str(len(report.results)), failures=str(failures), errors=str(errors), skipped=str(len(report.skipped)))
    for r in report.results:
        path = Path(r.path)
        case = ET.SubElement(tests, "testcase", classname=safe_text(path.parent.as_posix().strip("/")).replace("/", "."), name=safe_text(path.name), file=safe_text(r.path))
        if r.error is not None:
            ET.SubElement(case, "error", message=safe_text(r.error)).text = safe_text(r.error)
        elif r.differences:
            lines = [f"{key}: expected {want!r}, actual {got!r}" for key, (want, got) in r.differences.items()]
            ET.SubElement(case, "failure", message=safe_text(lines[0])).text = "\n".join(safe_text(line) for line in lines)
    for skipped in report.skipped:
        path = Path(skipped)
        case = ET.SubElement(tests, "testcase", classname=safe_text(path.parent.as_posix().strip("/")).replace("/", "."), name=safe_text(path.name), file=safe_text(skipped))
        ET.SubElement(case, "skipped", message="no expect block")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
