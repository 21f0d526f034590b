"""The case format (version 1): reading, validating and writing patient cases.

A case is JSON (or a dict); :func:`load_case` validates it against the
vocabulary the KB declares and returns a frozen :class:`Case`. Every problem
is a :class:`~kineret_asp.errors.CaseError` naming the source, the field path
and what was expected, with the nearest known value for a typo. Nothing a
user gives is dropped: an unknown field is an error, not ignored.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .errors import CaseError, did_you_mean
from .knowledge import KnowledgeBase, Vocabulary, resolve_kb
from .terms import Const

FORMAT_VERSION = 1
MAX_LIST_ITEMS = 1000
MAX_TEXT = 1000
MAX_MONTHS = 1200
MAX_FILE_BYTES = 16 * 1024 * 1024
GENE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")

TOP_FIELDS = (
    "version",
    "id",
    "description",
    "plan",
    "request",
    "indication",
    "prescriber_specialties",
    "genetic_tests",
    "medication_history",
    "current_medications",
    "beneficial_response",
    "expect",
)
ENTRY_FIELDS = ("drug", "outcome", "months", "sample")
TEST_FIELDS = ("gene", "result")


@dataclass(frozen=True)
class GeneticTest:
    """A genetic test result: the gene symbol and what the test found."""

    gene: str
    result: str

    def to_dict(self) -> dict:
        return {"gene": self.gene, "result": self.result}


@dataclass(frozen=True)
class MedicationEntry:
    """A drug the patient received before: outcome, length in months, sample or not."""

    drug: str
    outcome: str
    months: Optional[int] = None
    sample: bool = False

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"drug": self.drug, "outcome": self.outcome}
        if self.months is not None:
            out["months"] = self.months
        out["sample"] = self.sample
        return out


@dataclass(frozen=True)
class Case:
    """A validated patient case. ``source`` says where it came from (for messages)."""

    indication: str
    id: Optional[str] = None
    plan: Optional[str] = None
    request: str = "initial"
    prescriber_specialties: tuple[str, ...] = ()
    genetic_tests: tuple[GeneticTest, ...] = ()
    medication_history: tuple[MedicationEntry, ...] = ()
    current_medications: tuple[str, ...] = ()
    beneficial_response: Optional[bool] = None
    description: Optional[str] = None
    version: int = FORMAT_VERSION
    expect: Optional[Mapping[str, Any]] = field(default=None, compare=False, hash=False)
    source: str = field(default="<case>", compare=False, hash=False)

    def to_dict(self, with_expect: bool = False) -> dict:
        """The case in the JSON format, fields in a fixed order."""
        out: dict[str, Any] = {"version": self.version}
        if self.id is not None:
            out["id"] = self.id
        if self.description is not None:
            out["description"] = self.description
        if self.plan is not None:
            out["plan"] = self.plan
        out["request"] = self.request
        out["indication"] = self.indication
        out["prescriber_specialties"] = list(self.prescriber_specialties)
        out["genetic_tests"] = [t.to_dict() for t in self.genetic_tests]
        out["medication_history"] = [e.to_dict() for e in self.medication_history]
        out["current_medications"] = list(self.current_medications)
        if self.beneficial_response is not None:
            out["beneficial_response"] = self.beneficial_response
        if with_expect and self.expect is not None:
            out["expect"] = dict(self.expect)
        return out

    def atoms(self) -> list[tuple]:
        """The case as input atoms of the KB's case vocabulary (kb/case.lp)."""
        return case_atoms(self)


def case_atoms(case: Case) -> list[tuple]:
    """Translate a case into ``(predicate, *arguments)`` atoms, in a stable order."""
    atoms: list[tuple] = [("case_indication", Const(case.indication))]
    if case.plan is not None:
        atoms.append(("case_plan", Const(case.plan)))
    atoms.append(("case_request", Const(case.request)))
    for s in case.prescriber_specialties:
        atoms.append(("case_specialty", Const(s)))
    for i, t in enumerate(case.genetic_tests):
        atoms.append(("case_genetic_test", i, t.gene, Const(t.result)))
    for i, e in enumerate(case.medication_history):
        atoms.append(("case_history", i, Const(e.drug), Const(e.outcome)))
        if e.months is not None:
            atoms.append(("case_history_months", i, e.months))
        if e.sample:
            atoms.append(("case_history_sample", i))
    for d in case.current_medications:
        atoms.append(("case_current_medication", Const(d)))
    if case.beneficial_response:
        atoms.append(("case_beneficial_response",))
    return atoms


class _Validator:
    """Checks one case dict field by field against the KB's vocabulary."""

    def __init__(self, vocab: Vocabulary, source: str):
        self.v = vocab
        self.source = source

    def fail(self, path: str, message: str) -> CaseError:
        return CaseError(self.source, path, message)

    def text(self, value: Any, path: str, *, optional: bool = False) -> Optional[str]:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        if len(value) > MAX_TEXT:
            raise self.fail(path, f"expected at most {MAX_TEXT} characters, got {len(value)}")
        if "\x00" in value:
            raise self.fail(path, "a NUL character is not allowed")
        if not _encodable(value):
            raise self.fail(path, "not valid Unicode text (a lone surrogate)")
        return value

    def key(self, value: Any, path: str, table: Mapping[str, str], what: str, where: str) -> str:
        """A key of a vocabulary table; ``what`` is the noun with its article ("a drug")."""
        noun = what.split(" ", 1)[1]
        if not isinstance(value, str):
            raise self.fail(path, f"expected {what} key (a string), got {_kind(value)}")
        if value not in table:
            shown = value if len(value) <= 60 else value[:57] + "..."
            hint = did_you_mean(value, table) if len(value) <= 60 else ""
            if len(table) <= 20:
                expected = f"expected one of {', '.join(sorted(table))}"
            else:
                expected = f"expected {what} key of the KB ({where})"
            raise self.fail(path, f"unknown {noun} {shown!r}; {expected}{hint}")
        return value

    def items(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        if len(value) > MAX_LIST_ITEMS:
            raise self.fail(path, f"expected at most {MAX_LIST_ITEMS} entries, got {len(value)}")
        return value

    def obj(self, value: Any, path: str, fields: Sequence[str], required: Sequence[str]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object with {', '.join(fields)}, got {_kind(value)}")
        for k in value:
            if k not in fields:
                name = field_name(k)
                hint = did_you_mean(str(k), fields) if len(str(k)) <= 60 else ""
                raise self.fail(f"{path}{name}" if name.startswith("[") else (f"{path}.{name}" if path else name), f"unknown field{hint}; expected one of {', '.join(fields)}")
        for k in required:
            if k not in value:
                raise self.fail(f"{path}.{k}" if path else k, "missing required field")
        return value

    def case(self, data: Any) -> Case:
        if not isinstance(data, dict):
            raise self.fail("", f"expected a JSON object (a case), got {_kind(data)}")
        self.obj(data, "", TOP_FIELDS, ("indication",))
        version = data.get("version", FORMAT_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise self.fail("version", f"expected the format version number {FORMAT_VERSION}, got {_kind(version)}")
        if version != FORMAT_VERSION:
            raise self.fail("version", f"unsupported case format version {version}; this program reads version {FORMAT_VERSION}")
        v = self.v
        indication = self.key(data["indication"], "indication", v.indications, "an indication", "kb/vocabulary.lp")
        plan = data.get("plan")
        if plan is not None:
            plan = self.key(plan, "plan", v.plans, "a plan", "kb/vocabulary.lp")
        request = data.get("request", "initial")
        if request is None:
            request = "initial"
        request = self.key(request, "request", v.requests, "a request", "kb/vocabulary.lp")
        specialties = tuple(
            self.key(s, f"prescriber_specialties[{i}]", v.specialties, "a specialty", "kb/vocabulary.lp")
            for i, s in enumerate(self.items(data.get("prescriber_specialties"), "prescriber_specialties"))
        )
        tests = []
        for i, t in enumerate(self.items(data.get("genetic_tests"), "genetic_tests")):
            p = f"genetic_tests[{i}]"
            self.obj(t, p, TEST_FIELDS, TEST_FIELDS)
            gene = self.gene(t["gene"], f"{p}.gene")
            result = self.key(t["result"], f"{p}.result", v.test_results, "a test result", "kb/vocabulary.lp")
            tests.append(GeneticTest(gene, result))
        history = []
        for i, e in enumerate(self.items(data.get("medication_history"), "medication_history")):
            p = f"medication_history[{i}]"
            self.obj(e, p, ENTRY_FIELDS, ("drug", "outcome"))
            drug = self.key(e["drug"], f"{p}.drug", v.drugs, "a drug", "kb/tables/appendix_drug_classes.lp")
            outcome = self.key(e["outcome"], f"{p}.outcome", v.outcomes, "an outcome", "kb/vocabulary.lp")
            months = e.get("months")
            if months is not None:
                if isinstance(months, bool) or not isinstance(months, int):
                    raise self.fail(f"{p}.months", f"expected a whole number of months, got {_kind(months)}")
                if not 0 <= months <= MAX_MONTHS:
                    raise self.fail(f"{p}.months", f"expected 0 to {MAX_MONTHS} months, got {months}")
            sample = e.get("sample", False)
            if sample is None:
                sample = False
            if not isinstance(sample, bool):
                raise self.fail(f"{p}.sample", f"expected true or false, got {_kind(sample)}")
            history.append(MedicationEntry(drug, outcome, months, sample))
        current = tuple(
            self.key(d, f"current_medications[{i}]", v.drugs, "a drug", "kb/tables/appendix_drug_classes.lp")
            for i, d in enumerate(self.items(data.get("current_medications"), "current_medications"))
        )
        response = data.get("beneficial_response")
        if response is not None and not isinstance(response, bool):
            raise self.fail("beneficial_response", f"expected true, false or null, got {_kind(response)}")
        expect = data.get("expect")
        if expect is not None and not isinstance(expect, dict):
            raise self.fail("expect", f"expected an object, got {_kind(expect)}")
        return Case(
            indication=indication,
            id=self.text(data.get("id"), "id", optional=True),
            plan=plan,
            request=request,
            prescriber_specialties=specialties,
            genetic_tests=tuple(tests),
            medication_history=tuple(history),
            current_medications=current,
            beneficial_response=response,
            description=self.text(data.get("description"), "description", optional=True),
            version=version,
            expect=expect,
            source=self.source,
        )

    def gene(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a gene symbol (a string), got {_kind(value)}")
        if not GENE_PATTERN.match(value):
            raise self.fail(path, "expected a gene symbol: letters, digits, '.', '_' or '-', at most 64 characters")
        for known in self.v.genes:
            if known.lower() == value.lower():
                return known
        return value


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_]{1,60}\Z")


def field_name(key: Any) -> str:
    """A field name as it may appear in a one-line message: plain, or quoted in brackets."""
    text = str(key)
    if _PLAIN_KEY.match(text):
        return text
    quoted = json.dumps(text if len(text) <= 60 else text[:57] + "...")
    return f"[{quoted}]"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse_json_text(text: Union[str, bytes], source: str) -> Any:
    """Decode JSON, turning every failure into a one-line CaseError."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CaseError(source, "", f"not UTF-8 text (byte {exc.start}): expected a JSON case") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise CaseError(source, "", "empty input: expected a JSON object (a case)")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise CaseError(source, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise CaseError(source, "", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise CaseError(source, "", "invalid JSON: nested too deeply") from None


def parse_case(data: Any, source: str = "<dict>", kb: "KnowledgeBase | Path | str | None" = None) -> Case:
    """Validate a decoded case (a dict) against the KB's vocabulary."""
    vocab = resolve_kb(kb).vocabulary
    try:
        return _Validator(vocab, source).case(data)
    except RecursionError:
        raise CaseError(source, "", "nested too deeply") from None


def load_case(source: Union[str, Path, Mapping[str, Any], Case], kb: "KnowledgeBase | Path | str | None" = None) -> Case:
    """Load a case from a file path (``.json``, or ``.lp`` facts), a dict, or a Case.

    Raises :class:`CaseError` for anything that is not a valid version-1 case.
    """
    if isinstance(source, Case):
        return source
    if isinstance(source, Mapping):
        return parse_case(dict(source), "<dict>", kb)
    if not isinstance(source, (str, Path)):
        return parse_case(source, "<dict>", kb)
    path = Path(source)
    shown = str(source)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CaseError(shown, "", f"file too large ({size} bytes; a case is at most {MAX_FILE_BYTES} bytes)")
        raw = path.read_bytes()
    except CaseError:
        raise
    except FileNotFoundError:
        raise CaseError(shown, "", "no such file") from None
    except IsADirectoryError:
        raise CaseError(shown, "", "is a folder, expected a case file") from None
    except OSError as exc:
        raise CaseError(shown, "", f"cannot read file: {exc.strerror or exc}") from None
    if path.suffix == ".lp":
        from .lpcase import parse_lp_case

        return parse_lp_case(raw, shown, kb)
    return parse_case(parse_json_text(raw, shown), shown, kb)

