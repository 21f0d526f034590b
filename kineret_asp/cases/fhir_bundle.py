"""FHIR R4 input: a Bundle (a collection, or a CDS Hooks prefetch) read into a case.

Resources are parsed and validated by ``fhirclient`` (its models are
generated from FHIR 4.0.1, the release Da Vinci CRD and DTR build on); a
resource that does not validate is an error naming the entry and the
element. The valid resources are then read into a case through the mapping
the KB declares (:mod:`kineret_asp.knowledge.fhir_mapping`): which resources form which
group, which element of them fills which case field, which code means which
key. Nothing here names a field, a key or a code.

A code the tables do not know, a resource left out and an ingredient that
names only a class become notes of the answer (open world); the case is
then validated like any other input, so a Bundle that names no indication
is the same one-line error a JSON case without one is.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple, Optional

from ..errors import CaseError, few, list_more
from ..knowledge.fhir_mapping import CLOSED, OPEN, UNKNOWN, FhirMapping, Meaning, Row, mapping_for
from ..knowledge.schema import ENTRIES, KEY, LIST, NAME, OPEN_KEY, OPEN_NAME, REQUESTED_DRUG, UNDETERMINED, UNIT_VOCABULARY, decimal_of, describe, plain_number
from ..templates import optional_fill
from .validation import validate

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase
    from .case import Case

RESOURCE_TYPE = "resourceType"
BUNDLE = "Bundle"
MAX_ENTRIES = 5000
MAX_WHY = 1000  # the longest why of an undetermined fact (the case format's text limit)
MAX_PROBLEMS = 20
PATIENT = "Patient"  # the resource type that is the patient itself (FHIR R4)
FALLBACK = "fallback"  # a mapping row read only when the rows above gave nothing (framework/interop.lp)
_PY_TYPES = {"str": "a string", "int": "a number", "float": "a number", "bool": "true or false", "dict": "an object", "list": "a list", "NoneType": "null"}


def is_fhir(data: Any) -> bool:
    """Whether decoded JSON is a FHIR resource rather than a case (it says its resourceType)."""
    return (type(data) is dict or isinstance(data, Mapping)) and RESOURCE_TYPE in data


@dataclass(frozen=True)
class SourceNote:
    """A remark about the FHIR input: a code not in the tables, a resource left out."""

    where: str  # the resource, as Type/id
    field: str  # the case field it would have filled
    text: str


@dataclass
class Converted:
    """A Bundle read into case data, with the notes of what did not become a case fact."""

    data: dict[str, Any]
    notes: list[SourceNote] = field(default_factory=list)
    order: Optional[str] = None  # Type/id of the order under review
    resources: dict[str, Any] = field(default_factory=dict)  # Type/id -> model


# --- parsing and validating ----------------------------------------------------------


def _clean(message: str) -> tuple[str, str]:
    """A fhirclient validation message as (extra path, what was expected)."""
    m = re.search(r'Wrong type <class \'(\w+)\'> for (?:list )?property "(\w+)".*expecting (?:a list of )?<class \'[\w.]*?(\w+)\'>', message)
    if m:
        got, _, want = m.groups()
        want_words = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false"}.get(want, f"a {want} object")
        return "", f"expected {want_words}, got {_PY_TYPES.get(got, got)}"
    m = re.search(r'Superfluous entry "([^"]+)"', message)
    if m:
        return f".{m.group(1)}", "unknown element (not in FHIR R4)"
    m = re.search(r'Non-optional property "(\w+)".* is missing', message)
    if m:
        return f".{m.group(1)}", "missing required element"
    m = re.search(r"only takes dict or list of dict, but you provided <class '(\w+)'>", message)
    if m:
        return "", f"expected an object, got {_PY_TYPES.get(m.group(1), m.group(1))}"
    if "does not match expected format" in message:
        return "", "not a valid FHIR date or dateTime"
    return "", " ".join(message.split())[:200]


def _validation_lines(exc: Exception, path: str) -> Iterable[tuple[str, str]]:
    from fhirclient.models.fhirabstractbase import FHIRValidationError

    if isinstance(exc, FHIRValidationError):
        here = f"{path}.{exc.path}" if exc.path else path
        for inner in exc.errors:
            if isinstance(inner, FHIRValidationError):
                yield from _validation_lines(inner, here)
            else:
                extra, message = _clean(str(inner.args[0]) if inner.args else str(inner))
                yield re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", here + extra), message
    else:
        extra, message = _clean(str(exc))
        yield path + extra, message


def parse_leniently(data: Mapping[str, Any]) -> Optional[Any]:
    """A resource that failed validation, read as far as it goes (fhirclient's non-strict mode), or None."""
    import logging

    from fhirclient.models.fhirelementfactory import FHIRElementFactory

    kind = data.get(RESOURCE_TYPE)
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # fhirclient logs each problem it passes over
    try:
        model = type(FHIRElementFactory.instantiate(kind, None))(dict(data), strict=False)
    except Exception:  # noqa: BLE001 - anything it cannot read is simply not read
        return None
    finally:
        logging.disable(previous)
    return model if getattr(model, "resource_type", None) == kind else None


def parse_resource(data: Any, where: str, source: str) -> Any:
    """One FHIR R4 resource as a fhirclient model, or CaseError with every problem found."""
    from fhirclient.models.fhirabstractbase import FHIRValidationError
    from fhirclient.models.fhirelementfactory import FHIRElementFactory
    from fhirclient.models.resource import Resource

    if not isinstance(data, Mapping):
        raise CaseError(source, where, f"expected a FHIR resource (an object), got {describe(data)}")
    kind = data.get(RESOURCE_TYPE)
    if not isinstance(kind, str) or not re.fullmatch(r"[A-Z][A-Za-z]{1,63}", kind):
        raise CaseError(source, f"{where}.{RESOURCE_TYPE}", f"expected a FHIR resource type, got {describe(kind)}")
    try:
        model = FHIRElementFactory.instantiate(kind, dict(data))
    except FHIRValidationError as exc:
        errors = [CaseError(source, p, m) for p, m in _validation_lines(exc, where)]
        raise CaseError.many(errors[:20]) from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CaseError(source, where, f"not a valid {kind}: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(model, Resource) or getattr(model, "resource_type", None) != kind:
        raise CaseError(source, f"{where}.{RESOURCE_TYPE}", f"unknown FHIR R4 resource type {kind!r}")
    return model


def bundle_resources(data: Mapping[str, Any], source: str, read_types: Optional[set[str]] = None, invalid: Optional[list[CaseError]] = None) -> list[tuple[str, Optional[str], Any]]:
    """Every resource of a Bundle as (Type/id, fullUrl, model), validating them all.

    ``read_types``: the resource types the mapping reads; a resource of any
    other type is left out unread (an EHR's request carries orders and
    records no rule looks at, and some of them are not valid FHIR).
    ``invalid``: where to put what does not validate instead of raising it;
    each such resource is then read as far as it goes, so that the caller
    can tell whether the Bundle is a request of this policy at all.
    """
    if data.get(RESOURCE_TYPE) != BUNDLE:
        raise CaseError(source, RESOURCE_TYPE, f"expected a FHIR Bundle, got the resource type {str(data.get(RESOURCE_TYPE))[:60]!r}")
    entries = data.get("entry", [])
    if not isinstance(entries, list):
        raise CaseError(source, "entry", f"expected a list of entries, got {describe(entries)}")
    if len(entries) > MAX_ENTRIES:
        raise CaseError(source, "entry", f"expected at most {MAX_ENTRIES} entries, got {len(entries)}")
    shell = {k: v for k, v in data.items() if k != "entry"}
    errors: list[CaseError] = []
    try:
        parse_resource(shell, "", source)
    except CaseError as exc:
        errors.extend(exc.errors)
    out: list[tuple[str, Optional[str], Any]] = []
    for i, entry in enumerate(entries):
        where = f"entry[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("resource"), Mapping):
            errors.append(CaseError(source, f"{where}.resource", f"expected an entry with a resource, got {describe(entry)}"))
            continue
        resource = entry["resource"]
        if read_types is not None and resource.get(RESOURCE_TYPE) not in read_types:
            continue
        rid = resource.get("id")
        label = f"{resource.get(RESOURCE_TYPE)}/{rid}" if isinstance(rid, str) else f"{resource.get(RESOURCE_TYPE)}#{i}"
        try:
            model = parse_resource(resource, f"{where}.resource({label})", source)
        except CaseError as exc:
            errors.extend(exc.errors)
            model = parse_leniently(resource) if invalid is not None else None
            if model is None:
                continue
        full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        out.append((label, full_url, model))
    if errors and invalid is not None:
        invalid.extend(errors)
    elif errors:
        raise CaseError.many(errors[:20])
    return out


# --- reading a case --------------------------------------------------------------------


def _element(obj: Any, path: str) -> list[Any]:
    """The values at a dotted element path of a model (lists flattened), by JSON names."""
    values = [obj]
    for name in path.split("."):
        nxt: list[Any] = []
        for v in values:
            for attr, jsname, *_ in v.elementProperties() if hasattr(v, "elementProperties") else ():
                if jsname == name:
                    got = getattr(v, attr, None)
                    if isinstance(got, list):
                        nxt.extend(x for x in got if x is not None)
                    elif got is not None:
                        nxt.append(got)
        values = nxt
    return values


_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def _date(value: Any) -> Optional[datetime.date]:
    d = getattr(value, "date", None)
    if isinstance(d, datetime.datetime):
        return d.date()
    return d if isinstance(d, datetime.date) else None


def date_bounds(value: Any) -> Optional[tuple[datetime.date, datetime.date]]:
    """The first and last day a FHIR date or dateTime allows: "2023" is 2023-01-01 .. 2023-12-31."""
    raw = getattr(value, "origval", None)
    if not isinstance(raw, str):
        d = _date(value)
        return (d, d) if d is not None else None
    m = _PARTIAL_DATE.match(raw)
    if not m:
        return None
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    try:
        if day is not None:
            d = datetime.date(year, int(month), int(day))
            return d, d
        if month is not None:
            first = datetime.date(year, int(month), 1)
            following = datetime.date(year + (first.month == 12), first.month % 12 + 1, 1)
            return first, following - datetime.timedelta(days=1)
        return datetime.date(year, 1, 1), datetime.date(year, 12, 31)
    except ValueError:
        return None


def whole_months(start: datetime.date, end: datetime.date) -> int:
    """Whole calendar months from start to end (0 when end is not later)."""
    months = (end.year - start.year) * 12 + (end.month - start.month) - (1 if end.day < start.day else 0)
    return max(months, 0)


class Target(NamedTuple):
    """What a value read from FHIR becomes: a key of a vocabulary, a name, a number ..."""

    vocabulary: Optional[str]
    kind: str
    unit: Optional[str] = None  # a decimal's unit key (unit/2)
    places: int = 0  # a decimal's places


class NoOrder(CaseError):
    """A Bundle with no order for the requested drug: not a request the policy decides."""


class OtherPatient(CaseError):
    """A resource about another patient than the order's (or the hook's): never read."""


class TwoOrders(CaseError):
    """More than one order for the requested drug in one Bundle."""


@dataclass
class Denial:
    """A concept whose own words deny its code ("DIRA ruled out"): it places nothing.

    ``reason``: a record that gives the field no value it can be read as (a
    quantity that is only a bound, or in a unit the KB cannot convert): the
    field is undetermined whatever else the records say, with these words.
    """

    where: str
    keys: tuple[str, ...]
    words: str
    text: str
    reason: Optional[str] = None


class Reader:
    """Reads one Bundle's resources into case data through a KB's mapping.

    Values are read as FHIR means them: the statuses each group filters on,
    periods at their least favourable reading, references within the Bundle,
    every resource about the order's patient. Two records that say
    different things of one fact, and a record that denies itself, are not
    settled by order of appearance: the fact goes to the case's list of
    undetermined facts, with the records named, and the reviewer settles it.
    """

    def __init__(self, kb: "KnowledgeBase", resources: list[tuple[str, Optional[str], Any]], source: str):
        self.kb = kb
        self.map: FhirMapping = mapping_for(kb)
        self.schema = kb.schema
        self.source = source
        self.words = kb.vocabulary.word
        self.fill = lambda key, **values: optional_fill(kb.vocabulary.words.get(key, key), {k: str(v) for k, v in values.items() if v not in (None, "")})
        self.by_ref: dict[str, Any] = {}
        self.labels: dict[int, str] = {}
        self.order: list[Any] = []
        self.ordered: set[str] = set()  # the requested drugs the order's medication names
        for label, full_url, model in resources:
            self.by_ref[label] = model
            self.labels[id(model)] = label
            if full_url:
                self.by_ref[full_url] = model
        self.resources = [m for _, _, m in resources]
        self.notes: list[SourceNote] = []
        self._noted: set[tuple] = set()
        self.as_of: dict[str, datetime.date] = {}
        self.undetermined: list[dict[str, str]] = []
        self.denials: list[Denial] = []

    # resource groups
    def label(self, model: Any) -> str:
        return self.labels.get(id(model), getattr(model, "resource_type", "?"))

    def _holds(self, model: Any, element: str, wanted: Any, lenient: bool = False) -> bool:
        """Whether the element holds the value; ``lenient``: a coding without a system matches by its code alone."""
        for value in _element(model, element):
            if isinstance(wanted, tuple) and wanted and wanted[0] == "code":
                alias, code = wanted[1], wanted[2]
                uri = self.map.systems.get(alias)
                if any(c.code == code and (c.system == uri or (lenient and not c.system)) for c in (getattr(value, "coding", None) or [])):
                    return True
            elif isinstance(wanted, tuple) and wanted and wanted[0] == "field":
                uri = self.map.interop_systems.get("field")
                if any(c.system == uri and c.code == wanted[1] for c in (getattr(value, "coding", None) or [])):
                    return True
            elif value == wanted:
                return True
        return False

    def in_use(self, model: Any, use: str) -> bool:
        """Whether a resource belongs to a group: its type, every filter held, no skip held.

        A skip (entered in error, refuted) matches a status coding that
        omits its system, as a filter never does: a record that may be
        mistaken is left out rather than read.
        """
        if getattr(model, "resource_type", None) != self.map.uses.get(use):
            return False
        for element, wanted in self.map.filters.get(use, {}).items():
            if not any(self._holds(model, element, w) for w in wanted):
                return False
        for element, unwanted in self.map.skips.get(use, {}).items():
            if any(self._holds(model, element, w, lenient=True) for w in unwanted):
                return False
        return True

    def group(self, use: str) -> list[Any]:
        if any(use == u for u, _, _ in self.map.orders):
            return list(self.order)
        return [m for m in self.resources if m not in self.order and self.in_use(m, use)]

    def resolve(self, ref: Any, owner: Any) -> Optional[Any]:
        text = getattr(ref, "reference", None)
        if not isinstance(text, str):
            return None
        if text.startswith("#"):
            for c in getattr(owner, "contained", None) or []:
                if getattr(c, "id", None) == text[1:]:
                    return c
            return None
        found = self.by_ref.get(text)
        if found is None and "/" in text:
            found = self.by_ref.get("/".join(text.rstrip("/").split("/")[-2:]))
        return found

    def canonical(self, ref: Any, owner: Any) -> Optional[str]:
        """A reference as Type/id, through the Bundle where it can be resolved (fullUrl, absolute URL)."""
        found = self.resolve(ref, owner)
        if found is not None:
            return self.label(found)
        text = getattr(ref, "reference", None)
        if not isinstance(text, str) or not text:
            return None
        return "/".join(text.rstrip("/").split("/")[-2:]) if "/" in text else text

    # notes and undetermined facts
    def note(self, model: Any, field_path: str, text: str) -> None:
        key = (self.label(model), field_path, text)
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(SourceNote(self.label(model), field_path, text))

    def undetermine(self, field_name: str, why: str) -> None:
        item = {"field": field_name, "why": why[:MAX_WHY]}
        if item not in self.undetermined:
            self.undetermined.append(item)

    def conflict(self, field_name: str, found: Mapping[Any, list[str]], vocabulary: Optional[str]) -> str:
        more = list_more(self.kb.vocabulary.words)
        where = few(sorted({w for ws in found.values() for w in ws}), ", ", more)
        shown = few([f"{self.kb.vocabulary.label(vocabulary or '', v)} ({few(ws, ', ', more)})" for v, ws in found.items()], "; ", more)
        return self.fill("fhir_ambiguous", field=field_name, where=where, values=shown)

    # the order and its patient
    def find_order(self) -> None:
        """The order under review: a resource of the order group naming the requested drug."""
        requested = set(self.map.requested)
        vocabulary = next((v for v, keys in self.kb.vocabulary.keys.items() if requested & set(keys)), None)
        for use, element, how in self.map.orders:
            for model in self.resources:
                if model in self.order or not self.in_use(model, use):
                    continue
                ordered = requested & set(self.read(model, element, how, Target(vocabulary, KEY), use))
                if ordered:
                    self.order.append(model)
                    self.ordered.update(ordered)
        for name, (use, element) in self.map.as_of.items():
            for model in self.group(use):
                for value in _element(model, element):
                    bounds = date_bounds(value)
                    if bounds is not None:
                        self.as_of.setdefault(name, bounds[0])

    def no_order(self) -> str:
        """What the Bundle orders instead, in words, for the one line that refuses it."""
        orders = []
        for use, element, _how in self.map.orders:
            for model in self.resources:
                if getattr(model, "resource_type", None) == self.map.uses.get(use) and self.in_use(model, use) and _element(model, element):
                    concepts = [c for v in _element(model, element) for c in ([self.resolve(v, model)] if getattr(v, "reference", None) else [v]) if c is not None]
                    concepts = [getattr(c, "code", c) if getattr(c, "resource_type", None) else c for c in concepts]
                    shown = [c.display or c.code for concept in concepts for c in (getattr(concept, "coding", None) or []) if c.display or c.code]
                    text = next((getattr(concept, "text", None) for concept in concepts if getattr(concept, "text", None)), None)
                    orders.append(f"{text or (shown[0] if shown else self.words('fhir_not_coded'))} ({self.label(model)})")
        drug = self.kb.vocabulary.drug_name
        return self.fill("fhir_no_order", drug=drug, orders=", ".join(dict.fromkeys(orders)) or self.words("fhir_orders_nothing"))

    def check_patient(self, patient: Optional[str]) -> None:
        """Every resource must be about the order's patient (and the hook's, when given).

        One about another patient is refused with one line; one that names
        no patient where FHIR lets it is left out with a note.
        """
        order = self.order[0]
        expected = self.canonical(getattr(order, "subject", None), order)
        problems = []
        if patient is not None and expected != patient:
            problems.append(CaseError(self.source, self.label(order), self.fill("fhir_other_patient", where=self.label(order), patient=expected, expected=patient)))
            expected = patient
        kept = []
        for model in self.resources:
            kind = getattr(model, "resource_type", None)
            element = self.map.patients.get(kind or "")
            if kind == PATIENT:
                about: Optional[str] = self.label(model)
            elif element is None:
                kept.append(model)
                continue
            else:
                refs = _element(model, element)
                about = self.canonical(refs[0], model) if refs else None
            if about is None:
                self.note(model, "", self.words("fhir_no_patient"))
                continue
            if about != expected:
                problems.append(CaseError(self.source, self.label(model), self.fill("fhir_other_patient", where=self.label(model), patient=about, expected=expected)))
                continue
            kept.append(model)
        if problems:
            raise OtherPatient.many(problems[:MAX_PROBLEMS])
        self.resources = kept

    # reading values
    def target(self, name: str, list_field: Optional[str] = None) -> "Target":
        """What a field holds: the vocabulary of its keys and its kind."""
        f = self.schema.by_name[list_field].entry_field(name) if list_field else self.schema.by_name[name]
        kind = f.kind.item if f.kind.name == LIST and f.kind.item is not None else f.kind
        return Target(kind.vocabulary, kind.name, kind.unit, kind.places)

    def by_name(self, vocabulary: Optional[str], text: str) -> Optional[str]:
        index = self.kb.vocabulary.names.get(vocabulary or "")
        return index.key_of(text) if index is not None and text else None

    def codings(self, concept: Any, alias: Optional[str], vocabulary: Optional[str], with_class: bool, model: Any, path: str, kind: str, otherwise: Optional[str] = None) -> list[str]:
        """The keys a CodeableConcept means, noting a concept of which no coding means anything.

        ``otherwise``: the key a coding of the system means when no table row
        places it (a reason for this very drug: another use).
        """
        codings = getattr(concept, "coding", None) or []
        text = getattr(concept, "text", None) or ""
        words = " ".join([text] + [c.display or "" for c in codings])
        own = self.map.vocabulary_system(vocabulary) if vocabulary else None
        by_uri = self.map.by_uri
        found: list[str] = []
        class_noted = False
        for c in codings:
            if not c.code:
                continue
            if c.system == own and c.code in self.kb.vocabulary.keys.get(vocabulary or "", {}):
                found.append(c.code)
                continue
            system = by_uri.get(c.system or "")
            if system is None or system != alias or vocabulary is None:
                continue
            meaning: Meaning = self.map.meaning(system, c.code, vocabulary, words)
            if meaning.candidates:
                labels = self.words("list_separator").join(self.kb.vocabulary.label(vocabulary, k) for k in meaning.candidates)
                self.note(model, path, self.fill("fhir_needs_words", system=self.map.system_names.get(system, system), code=c.code, display=c.display, keys=labels))
                class_noted = True
                continue
            if meaning.class_only and not with_class:
                self.note(
                    model,
                    path,
                    self.fill("fhir_class_only", system=self.map.system_names.get(system, system), code=c.code, display=c.display, label=self.kb.vocabulary.label(vocabulary, meaning.keys[0])),
                )
                class_noted = True
                continue
            if not meaning.keys and vocabulary in self.map.named.get(system, ()):
                named = self.by_name(vocabulary, c.display or "")
                if named is not None:
                    found.append(named)
                    continue
            if not meaning.keys and otherwise is not None:
                self.note(model, path, self.fill("fhir_unknown_code", system=self.map.system_names.get(system, system), code=c.code, display=c.display))
                found.append(otherwise)
                continue
            found.extend(meaning.keys)
        if not found and not class_noted and not codings and text:
            named = self.by_name(vocabulary, text)
            if named is not None:
                found.append(named)
        denied = self.map.denies(text) if text else None
        if found and denied:
            self.denials.append(Denial(self.label(model), tuple(dict.fromkeys(found)), denied, text[:120]))
            return []
        if not found and not class_noted and any(by_uri.get(c.system or "") not in (None, alias) for c in codings) and not any(by_uri.get(c.system or "") == alias for c in codings):
            return []  # codings of another system only: the row that reads that system speaks for them
        if not found and not class_noted:
            if kind == NAME:
                shown = [c.display for c in codings if c.display] + ([text] if text else [])
                if shown:
                    return [shown[0]]
            known = [c for c in codings if c.code and by_uri.get(c.system or "") == alias] or [c for c in codings if c.code and (by_uri.get(c.system or "") or c.system == own)]
            first = known[0] if known else (codings[0] if codings else None)
            if first is not None:
                name = self.map.system_names.get(by_uri.get(first.system or "", ""), first.system or "?")
                self.note(model, path, self.fill("fhir_unknown_code", system=name, code=first.code, display=first.display))
                if kind == OPEN_KEY:  # an open vocabulary takes it by name: the rules see a drug they do not name
                    return [open_name(f"{name} {first.code}" + (f" {first.display}" if first.display else ""), self.words("fhir_not_coded"))]
            elif text:
                self.note(model, path, self.fill("fhir_uncoded_words", text=repr(text[:60])))
                if kind == OPEN_KEY:
                    return [open_name(text, self.words("fhir_not_coded"))]
        return list(dict.fromkeys(found))

    def read(self, model: Any, element: str, how: Any, target: "Target", path: str, use: Optional[str] = None) -> list[Any]:
        """The values one mapping row reads from one resource."""
        vocabulary, kind = target.vocabulary, target.kind
        values = _element(model, element)
        if not values:
            return []
        head = how[0] if isinstance(how, tuple) else how
        if head == FALLBACK:
            return self.read(model, element, how[1], target, path, use)
        if head in ("code", "class", "key", "code_else"):
            alias = how[1] if isinstance(how, tuple) else None
            otherwise = str(how[2]) if head == "code_else" else None
            out: list[Any] = []
            for concept in values:
                out.extend(self.codings(concept, alias, vocabulary, head == "class", model, path, kind, otherwise))
            return out
        if head == "present":
            return [how[1]]
        if head == "value":
            return [v for v in values if isinstance(v, (bool, int, str))]
        if head == "lookup":
            table = self.map.lookups.get(how[1], {})
            return [table[v] for v in values if isinstance(v, str) and v in table]
        if head == "extension":
            return [True] if any(getattr(e, "url", None) == how[1] and getattr(e, "valueBoolean", None) is True for e in values) else []
        if head == "months":
            return self.months(model, values, how[1], use)
        if head == "quantity":
            return self.quantities(model, values, how[1], target)
        if head == "via":
            _, use2, element2, how2 = how
            out = []
            for ref in values:
                found = self.resolve(ref, model)
                if found is None:
                    self.note(model, path, self.fill("fhir_bad_reference", reference=getattr(ref, "reference", "?")))
                elif self.in_use(found, use2):
                    out.extend(self.read(found, element2, how2, target, path, use2))
            return out
        if head == "component":
            _, alias, code, how2 = how
            uri = self.map.systems.get(alias)
            out = []
            for comp in values:
                if any(c.system == uri and c.code == code for c in (getattr(getattr(comp, "code", None), "coding", None) or [])):
                    out.extend(self.read(comp, "valueCodeableConcept", how2, target, path, use))
            return out
        if head == "where":
            _, sub, alias, code, how2 = how
            chosen = [v for v in values if self._holds(v, sub, ("code", alias, code))]
            if not chosen:
                return []
            head2 = how2[0] if isinstance(how2, tuple) else how2
            return [how2[1]] if head2 == "present" else []
        return []

    def quantities(self, model: Any, values: list[Any], alias: str, target: "Target") -> list[Any]:
        """The numbers of Quantities in the field's unit, through the KB's unit conversions.

        FHIR R4 Quantity: the unit is the one its code names in its system
        (the human-readable unit is display only); a comparator (<, <=, >=,
        >, ad) makes the value a bound, not the value. A quantity that is a
        bound, whose unit is not coded in the system, whose unit the KB
        cannot convert, or that is more precise than the rules read, gives
        no value: it leaves the field undetermined, with its words.
        """
        uri = self.map.systems.get(alias)
        out: list[Any] = []
        for q in values:
            number = getattr(q, "value", None)
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                continue
            shown = f"{getattr(q, 'comparator', None) or ''}{plain_number(decimal_of(number))} {getattr(q, 'code', None) or getattr(q, 'unit', None) or ''}".strip()
            unit_label = self.schema.vocabularies.get(UNIT_VOCABULARY, {}).get(target.unit or "", target.unit or "")
            why = None
            code = getattr(q, "code", None)
            key = self.schema.unit_key(code) if getattr(q, "system", None) == uri and code else None
            factor = self.schema.conversion_factor(key, target.unit)
            if getattr(q, "comparator", None):
                why = self.fill("fhir_quantity_bound", value=shown)
            elif getattr(q, "system", None) != uri or not code:
                why = self.fill("fhir_quantity_uncoded", value=shown, system=self.map.system_names.get(alias, alias))
            elif factor is None:
                known = [
                    self.schema.vocabularies.get(UNIT_VOCABULARY, {}).get(u, u)
                    for u in sorted({a for a, b in self.schema.conversions if b == target.unit} | {b for a, b in self.schema.conversions if a == target.unit})
                ]
                why = self.fill("fhir_quantity_unit", value=shown, unit=unit_label, known=", ".join([unit_label] + known))
            else:
                exact = decimal_of(number) * factor
                if exact.scaleb(target.places) != exact.scaleb(target.places).to_integral_value():
                    why = self.fill("fhir_quantity_precision", value=shown, unit=unit_label, places=target.places)
                else:
                    out.append(plain_number(exact))
                    continue
            self.denials.append(Denial(self.label(model), (), "", shown, self.fill("fhir_quantity_unread", where=self.label(model), why=why)))
        return out

    def months(self, model: Any, periods: list[Any], as_of_name: str, use: Optional[str]) -> list[int]:
        """Whole months of a period, at the least favourable reading its dates and the resource's status allow."""
        declared = self.map.periods
        reading = declared.get((use or "", str(getattr(model, "status", ""))))
        if reading is None:  # a group that says how its statuses read periods: any other status needs both ends
            reading = CLOSED if any(u == use for u, _ in declared) else OPEN
        if reading == UNKNOWN:
            return []
        as_of = self.as_of.get(as_of_name)
        out = []
        for period in periods:
            start = date_bounds(getattr(period, "start", None))
            end = date_bounds(getattr(period, "end", None))
            if start is None:
                continue
            last = end[0] if end is not None else (as_of if reading == OPEN else None)
            if last is None:
                continue
            if as_of is not None:
                last = min(last, as_of)
            out.append(min(whole_months(start[1], last), 1200))
        return out

    def rows_read(self, model: Any, rows: list[Row], target: "Target", path: str) -> tuple[list[Any], bool]:
        """The values a group of rows reads from one resource (a fallback row only when those above gave none), and whether any of their elements is there."""
        out: list[Any] = []
        present = False
        for row in rows:
            if _is_fallback(row.how) and out:
                continue
            present = present or bool(_element(model, row.element))
            out.extend(self.read(model, row.element, row.how, target, path, row.use))
        return out, present

    def denial_text(self, d: Denial) -> str:
        if d.reason is not None:
            return d.reason
        return self.fill("fhir_denied", where=d.where, words=d.words, text=d.text)

    def case_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for f in self.schema.fields:
            if f.kind.name == ENTRIES:
                entries = self.entries(f.name)
                if entries:
                    data[f.name] = entries
                continue
            rows = self.map.rows_for(f.name)
            if not rows:
                continue
            target = self.target(f.name)
            if f.kind.name == LIST:
                items = self.list_items(f.name, rows, target)
                if items:
                    data[f.name] = items
                continue
            value = self.single(f.name, rows, target)
            if value is not None:
                data[f.name] = value
            elif f.presence == "required" and not any(u["field"] == f.name for u in self.undetermined):
                self.undetermine(f.name, self.words("fhir_nothing_read"))
        return data

    def list_items(self, name: str, rows: list[Row], target: "Target") -> list[Any]:
        """Every value the rows read; a resource of the field's groups that gives none, in an open vocabulary, by a name that says so."""
        items: list[Any] = []
        for use in dict.fromkeys(r.use for r in rows):
            use_rows = [r for r in rows if r.use == use]
            for model in self.group(use):
                noted = len(self.notes)
                values, _ = self.rows_read(model, use_rows, target, name)
                if not values and target.kind == OPEN_KEY:
                    why = next((n.text for n in self.notes[noted:] if n.where == self.label(model)), self.words("fhir_not_read"))
                    values = [open_name(self.fill("fhir_unreadable", where=self.label(model), why=why), self.label(model))]
                items.extend(v for v in values if v not in items)
        return items

    def single(self, name: str, rows: list[Row], target: "Target") -> Optional[Any]:
        """A single-valued field: the first group that reads a value gives it; two values, or a denial, leave it undetermined."""
        for use in dict.fromkeys(r.use for r in rows):
            use_rows = [r for r in rows if r.use == use]
            found: dict[Any, list[str]] = {}
            present = False
            before, noted = len(self.denials), len(self.notes)
            for model in self.group(use):
                values, here = self.rows_read(model, use_rows, target, name)
                present = present or here
                for v in dict.fromkeys(values):
                    found.setdefault(v, []).append(self.label(model))
            fresh = self.denials[before:]
            if len(found) > 1:
                self.undetermine(name, self.conflict(name, found, target.vocabulary))
                return None
            denials = [d for d in fresh if d.reason is not None or set(d.keys) & set(found) or not found]
            if denials:  # a record denies what it codes: alone, or against another record, it settles nothing
                self.undetermine(name, self.denial_text(denials[0]))
                return None
            if found:
                return next(iter(found))
            if (name, use) in self.map.decisive and present:
                where = ", ".join(self.label(m) for m in self.group(use))
                what = "; ".join(dict.fromkeys(n.text for n in self.notes[noted:])) or self.words("fhir_not_read")
                self.undetermine(name, self.fill("fhir_reason_unplaced", where=where, what=what))
                return None
        return None

    def entries(self, list_name: str) -> list[dict[str, Any]]:
        lst = self.schema.by_name[list_name]
        out: list[dict[str, Any]] = []
        uses = [u for l, u in self.map.entries if l == list_name]
        for use in uses:
            for model in self.group(use):
                entry: dict[str, Any] = {}
                missing: Optional[str] = None
                unsettled: Optional[str] = None
                path_of = f"{list_name}[{len(out)}]"
                for e in lst.entry_fields:
                    rows = self.map.entry_rows(list_name, e.name, use)
                    before, noted = len(self.denials), len(self.notes)
                    values, present = self.rows_read(model, rows, self.target(e.name, list_name), f"{path_of}.{e.name}")
                    distinct = list(dict.fromkeys(values))
                    fresh = self.denials[before:]
                    if len(distinct) > 1:
                        unsettled = self.conflict(f"{list_name}.{e.name}", {v: [self.label(model)] for v in distinct}, self.target(e.name, list_name).vocabulary)
                    elif fresh:
                        unsettled = self.denial_text(fresh[0])
                    elif not distinct and present and (e.name, use) in self.map.decisive:
                        what = "; ".join(dict.fromkeys(n.text for n in self.notes[noted:])) or self.words("fhir_not_read")
                        unsettled = self.fill("fhir_reason_unplaced", where=self.label(model), what=what)
                    if unsettled is not None:
                        break
                    if distinct:
                        entry[e.name] = distinct[0]
                    elif e.presence == "required":
                        missing = e.name
                if unsettled is not None:
                    self.notes = [n for n in self.notes if not (n.where == self.label(model) and n.field.startswith(path_of))]
                    self.undetermine(list_name, f"{self.label(model)}: {unsettled}")
                    continue
                if missing is not None:
                    reason = next((n.text for n in reversed(self.notes) if n.where == self.label(model)), self.words("fhir_not_read"))
                    self.notes = [n for n in self.notes if not (n.where == self.label(model) and n.field.startswith(path_of))]
                    self.note(model, list_name, self.fill("fhir_entry_left_out", field=missing, reason=reason))
                    continue
                out.append(entry)
        return out


def _is_fallback(how: Any) -> bool:
    return isinstance(how, tuple) and bool(how) and how[0] == FALLBACK


def convert_bundle(data: Mapping[str, Any], source: str, kb: "KnowledgeBase", patient: Optional[str] = None, order_first: bool = False) -> Converted:
    """Read a Bundle into case data (not yet validated as a case) and notes.

    ``patient``: the patient the request is about (a CDS Hooks context's
    ``patientId``, as ``Patient/<id>``); without it, the order's subject.
    ``order_first``: a Bundle with no order for the requested drug is
    :class:`NoOrder` even when some of its resources are not valid FHIR (a
    CDS hook answers every order an EHR signs, and has nothing to say of
    another drug's); otherwise what does not validate is the error.
    """
    invalid: list[CaseError] = []
    resources = bundle_resources(data, source, {*mapping_for(kb).uses.values(), PATIENT}, invalid)
    reader = Reader(kb, resources, source)
    reader.find_order()
    if invalid and (reader.order or not order_first):
        raise CaseError.many(invalid[:MAX_PROBLEMS])
    if not reader.order:
        raise NoOrder(source, "entry", reader.no_order())
    if len(reader.order) > 1:
        raise TwoOrders(source, "entry", reader.fill("fhir_two_orders", where=", ".join(reader.label(o) for o in reader.order)))
    reader.check_patient(patient)
    case_data = reader.case_data()
    id_field = kb.schema.role("case_id")
    bundle_id = data.get("id")
    if id_field and isinstance(bundle_id, str):
        case_data[id_field] = bundle_id
    drug_field = kb.schema.role(REQUESTED_DRUG)
    if drug_field and len(reader.ordered) == 1:  # the order's medication is the drug the request asks for
        case_data[drug_field] = next(iter(reader.ordered))
    undetermined_field = kb.schema.role(UNDETERMINED)
    if reader.undetermined and undetermined_field:
        case_data[undetermined_field] = reader.undetermined
    converted = Converted(case_data, reader.notes, reader.label(reader.order[0]))
    converted.resources = {reader.label(m): m for m in reader.resources + reader.order}
    return converted


def bundle_case(data: Mapping[str, Any], source: str, kb: "KnowledgeBase", patient: Optional[str] = None, order_first: bool = False) -> tuple["Case", Converted]:
    """A validated Case from a Bundle, with the conversion (notes, order); ``patient``, ``order_first`` as for :func:`convert_bundle`."""
    converted = convert_bundle(data, source, kb, patient, order_first)
    try:
        return validate(kb.schema, converted.data, source), converted
    except CaseError as exc:
        # say why a field the case needs was not read from the Bundle
        lines = []
        for e in exc.errors:
            why = [f"{n.where}: {n.text}" for n in converted.notes if n.field.split("[")[0] == e.path.split("[")[0].split(".")[0]]
            lines.append(CaseError(e.source, e.path, e.message + (f" ({few(why, '; ', list_more(kb.vocabulary.words))})" if why else "")))
        raise CaseError.many(lines) from None


def open_name(text: str, fallback: str) -> str:
    """A name an open vocabulary accepts, made from a code or free text (other characters become spaces)."""
    for candidate in (text, fallback):
        cleaned = re.sub(r"[^A-Za-z0-9 ./+&_-]+", " ", candidate)
        cleaned = re.sub(r" +", " ", cleaned).strip(" ./+&_-")[:80].rstrip()
        if cleaned and OPEN_NAME.match(cleaned):
            return cleaned
    return "x"
