"""Every way a case arrives, read into a validated case with the version that decides it: the one loader.

A JSON case file, a FHIR R4 Bundle (a file, its bytes or decoded), ``.lp``
facts, a stream (stdin), JSON text, a dict or a :class:`~kineret_asp.cases.case.Case`:
whatever the input, :func:`load` chooses the version first (each version
declares its own schema; :mod:`kineret_asp.cases.versions` says how), then
validates the case against that version's schema. A Bundle is read through
the default version's FHIR mapping, and its case then goes to the version
its date of service chooses. Every command, the Python API, batch and the
HTTP service call :func:`load`; :func:`load_case` is its public face for a
caller who wants the case alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import CaseError
from ..knowledge.schema import DATE_OF_SERVICE, POLICY_SELECTOR, REQUESTED_DRUG
from .case import Case
from .fhir_bundle import Converted, NoOrder, SourceNote, bundle_case, is_fhir
from .files import MAX_FILE_BYTES, parse_json_text, read_case_file, read_case_stream
from .lp_case import read_lp_case
from .validation import validate
from .versions import Choice, Chooser, KbLike

CaseLike = Union[Case, Mapping[str, Any], str, Path]
"""What :func:`load_case` and the Python API take: a Case, a dict in the case format (or a Bundle), or a file's path."""


@dataclass(frozen=True)
class Loaded:
    """A validated case, the version chosen for it (and how), and what a FHIR Bundle left out of it."""

    case: Case
    choice: Choice
    notes: tuple[SourceNote, ...] = ()  # a Bundle's codes the tables do not know, resources left out
    bundle: Optional[Converted] = None  # a Bundle's reading: the order under review and its resources


def load(source: Any, kb: KbLike = None, *, shown: Optional[str] = None, by_folder: bool = False, patient: Optional[str] = None, order_first: bool = False) -> Loaded:
    """Any input read into a validated case, with the version that decides it.

    ``source`` is a :class:`Case`, a mapping (a case, or a FHIR Bundle), a
    path (``str`` or :class:`Path`: a ``.json`` case or Bundle, or ``.lp``
    facts), JSON text as ``bytes``, or a binary stream (stdin) read within
    the case cap. ``kb`` is a KB tree (each case by its date of service), a
    version, or a :class:`Chooser`. ``shown`` names the input in messages
    (default: the path, ``<dict>``, ``<bytes>``, ``<stdin>``).
    ``by_folder``: an undated case kept in a version's ``cases/`` folder is
    decided by that version (``kineret-asp test`` only: anywhere else, where
    a file is kept never changes its decision). ``patient`` and
    ``order_first`` are for a Bundle (see
    :func:`~kineret_asp.cases.fhir_bundle.convert_bundle`). Raises
    :class:`~kineret_asp.errors.CaseError` for anything that is not a valid
    case.
    """
    chooser = Chooser.of(kb)
    if type(source) is dict:  # decoded JSON: the many-case paths' input
        return _data(source, chooser, shown or "<dict>", None, patient, order_first)
    if isinstance(source, Case):
        return _case(source, chooser)
    if isinstance(source, (str, Path)):
        path = Path(source)
        shown = shown or str(source)
        where = path if by_folder else None
        if path.suffix == ".lp":
            return _lp(path, chooser, shown, where)
        data = parse_json_text(read_case_file(path, shown, MAX_FILE_BYTES), shown)
        return _data(data, chooser, shown, where, patient, order_first)
    if isinstance(source, (bytes, bytearray)):
        shown = shown or "<bytes>"
        return _data(parse_json_text(bytes(source), shown), chooser, shown, None, patient, order_first)
    if hasattr(source, "read"):
        shown = shown or "<stdin>"
        return _data(parse_json_text(read_case_stream(source, shown), shown), chooser, shown, None, patient, order_first)
    data = source if type(source) is dict else dict(source) if isinstance(source, Mapping) else source
    return _data(data, chooser, shown or "<dict>", None, patient, order_first)


def load_case(source: CaseLike, kb: KbLike = None) -> Case:
    """A case from a file path (``.json``, a FHIR Bundle, or ``.lp`` facts), a dict, or a Case, validated.

    With a KB tree (or None, the packaged KB) the case is validated against
    the version that decides it (by its date of service; see
    :mod:`kineret_asp.cases.versions`); a KnowledgeBase or a version folder
    is used as it is. A Case is validated again unless it was validated
    against that very version. Raises :class:`~kineret_asp.errors.CaseError`
    for anything that is not a valid version-1 case.
    """
    return load(source, kb).case


def load_changed(before: Loaded, changed: Case, kb: KbLike = None) -> Loaded:
    """A changed case with the version that decides it: the original's, unless the change moved its date or policy."""
    chooser = Chooser.of(kb)
    choice = before.choice
    if chooser.fixed is None:
        schema = choice.kb.schema
        selectors = [f for f in (schema.role(DATE_OF_SERVICE), schema.role(POLICY_SELECTOR), schema.role(REQUESTED_DRUG)) if f]
        if any(before.case.get(f) != changed.get(f) for f in selectors):
            choice = chooser.choose(changed, changed.source)
    return Loaded(_in(changed, choice), choice, before.notes, before.bundle)


def on_date(loaded: Loaded, date: str, kb: KbLike = None) -> Loaded:
    """The case as of ``date`` when it gives no date of service of its own, with the version in force that day.

    A CDS Hooks call asks about an order being written now: the policy in
    force on the call's day decides it (not a version effective later), and
    the logged case keeps the date, so that re-deciding it later takes the
    same version.
    """
    field = loaded.choice.kb.schema.role(DATE_OF_SERVICE)
    if field is None or loaded.case.get(field) is not None:
        return loaded
    data = {**loaded.case.to_dict(with_expect=True), field: date}
    choice = Chooser.of(kb).choose(data, loaded.case.source)
    return Loaded(validate(choice.kb.schema, _drug_read(data, choice), loaded.case.source), choice, loaded.notes, loaded.bundle)


def _data(data: Any, chooser: Chooser, shown: str, where: Optional[Path], patient: Optional[str], order_first: bool) -> Loaded:
    """Decoded JSON: a case, or a Bundle read into one."""
    if is_fhir(data):
        read, converted = _bundle(data, chooser, shown, patient, order_first)
        choice = chooser.choose(read, shown)
        return Loaded(_in(read, choice), choice, tuple(converted.notes), converted)
    choice = chooser.choose(data, shown, where=where)
    return Loaded(validate(choice.kb.schema, _drug_read(data, choice), shown), choice)


def _drug_read(data: Any, choice: Choice) -> Any:
    """The case with its requested drug as the key the chosen version read it as (a name or a code the KB knows)."""
    field = choice.kb.schema.role(REQUESTED_DRUG) if choice.drug is not None else None
    if field is None or not isinstance(data, dict) or data.get(field) == choice.drug:
        return data
    return {**data, field: choice.drug}


def _lp(path: Path, chooser: Chooser, shown: str, where: Optional[Path]) -> Loaded:
    """``.lp`` facts: read by the version chosen without them, or, in a tree of several policies, by the policy whose claims the facts' case meets."""
    if chooser.tree is None or len(chooser.tree.policies) == 1 or (where is not None and chooser.tree.holding(where) is not None):
        choice = chooser.choose({}, shown, where=where)
        return Loaded(read_lp_case(path, shown, choice.kb), choice)
    first: Optional[CaseError] = None
    for versions in chooser.tree.policies.values():
        try:
            read = read_lp_case(path, shown, versions[-1])
        except CaseError as exc:  # facts of another policy's inputs
            first = first or exc
            continue
        choice = chooser.choose(read.to_dict(with_expect=True), shown)
        return Loaded(_in(read, choice), choice)
    assert first is not None
    raise first


def _bundle(data: Any, chooser: Chooser, shown: str, patient: Optional[str], order_first: bool) -> tuple[Case, Converted]:
    """A Bundle read through the FHIR mapping of the policy whose requested drug its order names (the latest version of each, in turn)."""
    if chooser.tree is None or len(chooser.tree.policies) == 1:
        return bundle_case(data, shown, chooser.default(), patient, order_first)
    for versions in chooser.tree.policies.values():
        try:
            return bundle_case(data, shown, versions[-1], patient, True)
        except NoOrder:
            continue  # another policy's drug: its mapping finds no order
    return bundle_case(data, shown, chooser.default(), patient, order_first)  # no policy's order: the first policy's error


def _case(case: Case, chooser: Chooser) -> Loaded:
    choice = chooser.choose(case, case.source)
    return Loaded(_in(case, choice), choice)


def _in(case: Case, choice: Choice) -> Case:
    """A case validated against the chosen version's schema (again only when it was validated against another)."""
    schema = choice.kb.schema
    if case.schema is schema:
        return case
    return validate(schema, case.to_dict(with_expect=True), case.source)
