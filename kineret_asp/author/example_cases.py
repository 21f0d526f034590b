"""Example cases as tests: every case file with an ``expect`` block.

A case file (JSON) may carry what the policy says its decision must be::

    "expect": {"decision": "criteria_not_met", "unmet": ["3", "3.C"],
               "authorization_months": null, "reasons": [], "route": "clinical_review",
               "met": ["3.B"]}

Every key is optional. ``unmet``, ``blocking`` and ``reasons`` are the full
lists (in any order); ``met`` and ``unmet_includes`` are ids that must be
among the met, or the unmet, criteria (others may be too), so that an
example can say what it is about without listing every row a revision may
add. :func:`run_case_tests` decides each case with a KB and compares;
:class:`Coverage` counts, for every criterion of a version, the cases in
which it was met and unmet; :func:`proposed_updates` gives the expect block
each failing case would need to pass (``kineret-asp test --update``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from ..cases.case import Case
from ..decisions.decision import Decision
from ..errors import CaseError, did_you_mean
from ..knowledge.layout import CASES, display_path

EXPECT_KEYS = ("decision", "unmet", "authorization_months", "reasons", "route", "met", "blocking", "unmet_includes")
LIST_KEYS = ("unmet", "reasons", "met", "blocking", "unmet_includes")  # lists of ids
SUBSET_KEYS = ("met", "unmet_includes")  # ids that must be among the actual ones


@dataclass
class CaseTestResult:
    """The outcome of one example case."""

    path: str
    case_id: Optional[str]
    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    error: Optional[str] = None
    decision: Optional[Decision] = None
    file: Optional[Path] = None  # the case file (None for an error before it was read)
    expect: Optional[dict] = None  # the expect block as written

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
    from ..cases.fhir_bundle import is_fhir

    try:
        return is_fhir(json.loads(path.read_bytes()))
    except (OSError, ValueError, RecursionError):
        return False


def actual_values(decision: Decision) -> dict[str, Any]:
    """What each expectation is compared with."""
    return {
        "decision": decision.decision,
        "authorization_months": decision.authorization_months,
        "route": decision.route,
        "unmet": list(decision.unmet),
        "unmet_includes": list(decision.unmet),
        "blocking": list(decision.blocking),
        "reasons": [r.id for r in decision.reasons],
        "met": [c for c, m in decision.statuses().items() if m],
    }


def compare(expect: dict, decision: Decision) -> dict[str, tuple[Any, Any]]:
    """The expected values that the decision does not have, with the actual ones.

    For ``met`` and ``unmet_includes`` (subsets) the actual value shown is
    the expected ids that hold.
    """
    diffs: dict[str, tuple[Any, Any]] = {}
    actual = actual_values(decision)
    for key, want in expect.items():
        got = actual[key]
        if key in SUBSET_KEYS:
            missing = [c for c in want if c not in got]
            if missing:
                diffs[key] = (want, [c for c in want if c in got])
        elif key in LIST_KEYS:
            if sorted(want) != sorted(got):
                diffs[key] = (want, got)
        elif want != got:
            diffs[key] = (want, got)
    return diffs


def updated_expect(expect: dict, decision: Decision) -> dict:
    """The expect block that the decision meets: each key the block gives, with the decision's value.

    A full list (``unmet``, ``blocking``, ``reasons``) becomes the decision's;
    a subset (``met``, ``unmet_includes``) keeps the ids that still hold, so
    an example keeps saying what it is about. Keys keep their order.
    """
    actual = actual_values(decision)
    out: dict[str, Any] = {}
    for key, want in expect.items():
        if key in SUBSET_KEYS:
            out[key] = [c for c in want if c in actual[key]]
        elif key in LIST_KEYS and sorted(want) == sorted(actual[key]):
            out[key] = want  # the same ids: as the author ordered them
        else:
            out[key] = actual[key]
    return out


def check_expect(expect: Any, source: str) -> dict:
    if not isinstance(expect, dict):
        raise CaseError(source, "expect", "expected an object")
    for k in expect:
        if k not in EXPECT_KEYS:
            raise CaseError(source, f"expect.{k}", f"unknown expectation{did_you_mean(k, EXPECT_KEYS)}; expected one of {', '.join(EXPECT_KEYS)}")
    for k in LIST_KEYS:
        if k in expect and not (isinstance(expect[k], list) and all(isinstance(x, str) for x in expect[k])):
            raise CaseError(source, f"expect.{k}", "expected a list of ids (strings)")
    return expect


def example_folders(kb: Any = None) -> list[Path]:
    """The ``cases/`` folder of every version of a KB (of the one version a KnowledgeBase or version folder names).

    Found from the KB, not from the working folder: the same from any
    folder, and for an installed package (its KB ships its cases).
    """
    from ..cases.versions import Chooser

    chooser = kb if isinstance(kb, Chooser) else Chooser.of(kb)
    return [v.path / CASES for v in chooser.versions() if (v.path / CASES).is_dir()]


def run_case_tests(paths: Sequence[Path], kb: Any = None) -> CaseTestReport:
    """Decide every case file with an expect block and compare.

    Each case is decided by the version chosen for it (its date of service,
    else the version folder it is kept in, else the latest); a
    KnowledgeBase or a version folder decides every case.
    """
    from ..api import decide_many
    from ..cases.load import Loaded, load
    from ..cases.versions import Chooser

    chooser = kb if isinstance(kb, Chooser) else Chooser.of(kb)
    results: list[CaseTestResult] = []
    skipped: list[str] = []
    runnable: list[tuple[str, Case, Any, Path]] = []
    for path in discover(paths):
        shown = display_path(path)
        try:
            if path.suffix != ".lp" and _fhir_file(path):  # a FHIR Bundle has no expect block: skipped
                skipped.append(shown)
                continue
            read = load(path, chooser, by_folder=True)
            case, choice = read.case, read.choice
            if case.expect is None:
                skipped.append(shown)
                continue
            routing = _misrouted(path, shown, chooser, choice)
            if routing is not None:
                results.append(CaseTestResult(shown, case.id, error=routing, file=path))
                continue
            check_expect(case.expect, shown)
            runnable.append((shown, case, choice, path))
        except CaseError as exc:
            results.append(CaseTestResult(shown, None, error=exc.line(), file=path))
    used = set(id(c.kb) for _, _, c, _ in runnable)
    versions = [v for v in chooser.versions() if id(v) in used] or [chooser.default()]
    versions += [c.kb for _, _, c, _ in runnable if c.kb not in versions]
    coverages = {id(v): Coverage.empty(v.vocabulary.criteria, version_label(v), v.folder) for v in dict.fromkeys(versions)}
    decisions = list(decide_many([Loaded(c, choice) for _, c, choice, _ in runnable])) if runnable else []
    for (shown, case, choice, path), decision in zip(runnable, decisions):
        coverages[id(choice.kb)].add(decision)
        expect = dict(case.expect or {})
        results.append(CaseTestResult(shown, case.id, compare(expect, decision), decision=decision, file=path, expect=expect))
    results.sort(key=lambda r: r.path)
    return CaseTestReport(results, VersionCoverage(list(coverages.values())), skipped)


def _misrouted(path: Path, shown: str, chooser: Any, choice: Any) -> Optional[str]:
    """In a tree of several policies, why an example case kept in one policy's folder would not reach that policy as a request (None when it would).

    A case is decided by its folder's version when ``test`` runs it; a
    request is routed by its drug and the policies' claims. An example the
    tree would route elsewhere, or refuse, shows that adding a policy or a
    claim changed who decides it.
    """
    from ..cases.load import load

    if chooser.tree is None or len(chooser.tree.policies) < 2 or choice.policy_how != "folder":
        return None
    own = choice.kb.identity.policy
    try:
        routed = load(path, chooser).choice
    except CaseError as exc:
        return f"routed through the tree as a request, it is refused: {exc.line().split(': ', 1)[-1]}"
    if routed.kb.identity.policy != own:
        return f"routed through the tree as a request, it is decided by {routed.kb.identity.policy}, not by {own} whose folder keeps it"
    return None


def version_label(kb: Any) -> str:
    """A version as the test report names it: its policy and effective period."""
    ident = kb.identity
    return f"{ident.policy} {ident.period}"


def format_report(
    report: CaseTestReport, show_coverage: bool = False, updated: Sequence["ExpectUpdate"] = (), leave_out: "set[str] | frozenset[str]" = frozenset(), words: Optional[dict] = None
) -> str:
    """The report as text: PASS, FAIL with what differs, UPDATE with the block written (``updated``); ``leave_out`` (cases asked about later) and the summary left for the caller when given."""
    lines = []
    written = {u.path: u for u in updated}
    for r in report.results:
        if r.path in leave_out:
            continue
        if r.passed:
            lines.append(f"PASS {r.path}")
            continue
        if r.path in written:
            lines += written[r.path].lines(words or {})
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
    if leave_out:
        return "\n".join(lines) + "\n" if lines else ""
    if updated:
        lines.append(_fill(words or {}, "test_update_written", written=len(updated), left=report.failed - len(updated)))
    lines.append(f"{report.passed + len(updated)} passed, {report.failed - len(updated)} failed")
    return "\n".join(lines) + "\n"


def _fill(words: dict, key: str, **values: Any) -> str:
    from ..templates import fill

    return fill(words.get(key, key), values)


# --- test --update: the expect blocks failing cases would need --------------------------


@dataclass
class ExpectUpdate:
    """A failing case's expect block, the block its decision meets, and the file's text with it."""

    path: str  # as shown
    file: str  # the file to write
    case_id: Optional[str]
    before: dict
    after: dict
    text: str  # the whole file with the new block

    def diff_lines(self) -> list[str]:
        """Each changed expectation of the block, ``-`` before and ``+`` after, one JSON line each."""
        out = []
        for key in dict.fromkeys([*self.before, *self.after]):
            old, new = self.before.get(key), self.after.get(key)
            if key in self.before and key in self.after and old == new:
                continue
            if key in self.before:
                out.append(f"-  {json.dumps(key)}: {json.dumps(old, ensure_ascii=False)}")
            if key in self.after:
                out.append(f"+  {json.dumps(key)}: {json.dumps(new, ensure_ascii=False)}")
        return out

    def write(self) -> None:
        Path(self.file).write_text(self.text, encoding="utf-8")

    def lines(self, words: dict) -> list[str]:
        """The case and its block's changed lines, as the report shows them."""
        head = _fill(words, "test_update_case", path=self.path) + (f" ({self.case_id})" if self.case_id else "")
        return [head, *(f"     {line}" for line in self.diff_lines())]

    def to_dict(self) -> dict:
        return {"path": self.path, "id": self.case_id, "before": self.before, "after": self.after}


class UpdateError(Exception):
    """An expect block that cannot be rewritten in place (the file is not the JSON object it was read as)."""


def proposed_updates(report: CaseTestReport) -> tuple[list[ExpectUpdate], list[tuple[str, str]]]:
    """The new expect block of every failing case whose input is valid, and the failing cases left as they are (with why).

    A case whose input (or expect block) fails validation is never
    touched: its error is the author's to fix. Only the expect block
    changes; the rest of the file stays byte for byte.
    """
    updates: list[ExpectUpdate] = []
    left: list[tuple[str, str]] = []
    for r in report.results:
        if r.passed:
            continue
        if r.error is not None or r.decision is None or r.file is None or r.expect is None:
            left.append((r.path, r.error or ""))
            continue
        after = updated_expect(r.expect, r.decision)
        try:
            raw = Path(r.file).read_text(encoding="utf-8")
            text = rewrite_expect(raw, after)
        except (OSError, UnicodeDecodeError, UpdateError) as exc:
            left.append((r.path, str(exc)))
            continue
        updates.append(ExpectUpdate(r.path, str(r.file), r.case_id, r.expect, after, text))
    return updates, left


def rewrite_expect(text: str, expect: dict) -> str:
    """A case file's text with its top-level ``expect`` value replaced, everything else as written.

    The new block is written in the style of the old one: on one line if
    it was, else indented like the line of its key. The result is read
    back: it must be the same case with the new block.
    """
    start, end, indent = _expect_span(text)
    old = text[start:end]
    if "\n" in old:
        unit = max(len(indent), 2) if indent else 2
        block = json.dumps(expect, indent=unit, ensure_ascii=False).replace("\n", "\n" + indent)
    else:
        block = json.dumps(expect, ensure_ascii=False)
    new = text[:start] + block + text[end:]
    try:
        before, after = json.loads(text), json.loads(new)
    except ValueError as exc:
        raise UpdateError(f"not a JSON object: {exc}") from None
    before["expect"] = expect
    if before != after:
        raise UpdateError("the expect block could not be rewritten in place")
    return new


def _expect_span(text: str) -> tuple[int, int, str]:
    """Where the value of the top-level ``expect`` key is, and the indentation of its key's line."""
    i = _skip(text, 0)
    if i >= len(text) or text[i] != "{":
        raise UpdateError("not a JSON object")
    i += 1
    while True:
        i = _skip(text, i)
        if i < len(text) and text[i] == "}":
            break
        if i >= len(text) or text[i] != '"':
            raise UpdateError("not a JSON object")
        key_at = i
        i = _string_end(text, i)
        key = json.loads(text[key_at:i])
        i = _skip(text, i)
        if i >= len(text) or text[i] != ":":
            raise UpdateError("not a JSON object")
        i = _skip(text, i + 1)
        end = _value_end(text, i)
        if key == "expect":
            line_start = text.rfind("\n", 0, key_at) + 1
            lead = text[line_start:key_at]
            return i, end, lead if not lead.strip() else ""
        i = _skip(text, end)
        if i < len(text) and text[i] == ",":
            i += 1
    raise UpdateError("the case has no expect block")


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    """The index after the JSON string starting at ``i``."""
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise UpdateError("an unterminated string")


def _value_end(text: str, i: int) -> int:
    """The index after the JSON value starting at ``i``."""
    if i >= len(text):
        raise UpdateError("a key without a value")
    if text[i] == '"':
        return _string_end(text, i)
    if text[i] in "{[":
        depth = 0
        while i < len(text):
            ch = text[i]
            if ch == '"':
                i = _string_end(text, i)
                continue
            if ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise UpdateError("an unclosed object or list")
    j = i
    while j < len(text) and text[j] not in ",}] \t\r\n":
        j += 1
    return j


@dataclass
class UpdateSession:
    """The expect blocks ``test --update`` would write, and what it then says (words from the KB).

    Made in the worker that decided the cases; :meth:`finish` runs in the
    command's own process, where the terminal is: it shows each block's
    diff and asks whether to write it.
    """

    updates: list[ExpectUpdate]
    passed: int
    others_failed: int  # failing cases that cannot be updated (their input fails validation)
    words: dict

    def write_all(self) -> list[ExpectUpdate]:
        for u in self.updates:
            u.write()
        return list(self.updates)

    def finish(self) -> int:
        """Show each block, ask (at a terminal) whether to write it; the summary; the exit code."""
        import click

        interactive = _is_terminal()
        written = 0
        answer = ""
        for u in self.updates:
            click.echo("\n".join(u.lines(self.words)))
            if not interactive:
                continue
            if answer != "a":
                answer = click.prompt(_fill(self.words, "test_update_prompt", path=u.path), type=click.Choice(["y", "n", "a", "q"]), default="n", show_choices=False)
            if answer == "q":
                break
            if answer in ("y", "a"):
                u.write()
                written += 1
        if self.updates and not interactive:
            click.echo(_fill(self.words, "test_update_not_a_terminal"))
        left = len(self.updates) - written
        click.echo(_fill(self.words, "test_update_written", written=written, left=left + self.others_failed))
        failed = self.others_failed + left
        click.echo(f"{self.passed + written} passed, {failed} failed")
        return 1 if failed else 0


def _is_terminal() -> bool:
    """Whether the command can ask its user (stdin is a terminal)."""
    import sys

    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
