"""The decision on a case: what the solver answered, as a value and as text.

:func:`build_decision` turns the atoms a KB shows for one case into a
:class:`Decision`; nothing here decides anything, it only arranges the
solver's answer (criteria tree, unmet ids, reasons, notes, the evidence of
each criterion) with the KB's words, in the KB's order. ``to_dict`` is the
public decision format; ``render_text`` is what a reviewer reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Optional

from ..asp.symbols import Const, Value
from ..errors import KineretError
from ..knowledge.schema import ENTRIES, LIST
from ..knowledge.vocabulary import Vocabulary
from ..memo import IdentityMemo, Memo
from ..safetext import dumps, safe_text
from ..templates import fill
from .words import entry_templates, entry_words

if TYPE_CHECKING:  # pragma: no cover
    from ..cases.case import Case
    from ..cases.versions import Provenance, Route
    from ..knowledge.base import KnowledgeBase

APPROVED = "approved"  # the decision format's word for an approval
SHOWN_POLICY_CHOICES = ("named", "claim", "drug", "case_format", "folder")  # the provenance's policy_chosen_by a text header shows (a tree of several policies)


EVIDENCE = "evidence"  # the shown predicate of the evidence atoms (framework/evidence.lp)
NOTE = "note"  # the shown predicate of the explanation's notes (framework/decision.lp)
REASON = "reason"  # the shown predicates of why a request is not covered, and of the case values that made it apply
REASON_DETAIL = "reason_detail"
UNDETERMINED = "undetermined"  # the shown predicate of facts a case does not establish (framework/decision.lp)
_OWN_PARTS = frozenset({EVIDENCE, NOTE, REASON_DETAIL})  # the shown predicates whose atoms name a case's own facts (a history entry's place, a list item, a value)
COUNTED = "counted"  # the framework's status of a case fact that counted (framework/evidence.lp)
NOT_COUNTED = "not_counted"
TREES_KEPT = 2_000
"""Criteria trees a builder remembers: they carry each case's evidence, so few recur (about one build in five)."""
EVIDENCE_KEPT = 20_000
"""Pieces of evidence a builder remembers, by the case values they show."""
BLOCKING_KEPT = 2_000
"""Blocking lists a builder remembers, by the tree's shape (a few hundred recur)."""
NOTES_KEPT = 1_000
"""Notes a builder remembers, by an answer's note atoms (a hundred or two recur)."""
TEXTS_KEPT = 1_000
"""JSON texts of shared decision parts a :class:`DecisionEncoder` remembers."""


@dataclass(frozen=True)
class Evidence:
    """A case fact a criterion read: where it is, its values, whether it counted and why not.

    ``value`` is the fact as the case format writes it (an entry's fields,
    a list item, a field's value; held hashable in ``data``); ``subject``
    names it in the KB's words; ``reason`` is the KB's key for why it did
    not count.
    """

    field: str
    subject: str
    status: str  # COUNTED | NOT_COUNTED
    reason: Optional[str]
    text: str
    data: Any = None

    @property
    def counted(self) -> bool:
        return self.status == COUNTED

    @property
    def value(self) -> Any:
        return _thawed(self.data)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"field": self.field, "value": self.value, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        out["text"] = self.text
        return out


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return ("__object__", tuple((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("__list__", tuple(_frozen(v) for v in value))
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__object__":
        return {k: _thawed(v) for k, v in value[1]}
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__list__":
        return [_thawed(v) for v in value[1]]
    return value


@dataclass(frozen=True)
class CriterionResult:
    """One node of the criteria tree: the policy's id and words, met or not, and its evidence."""

    id: str
    text: str
    met: bool
    children: tuple["CriterionResult", ...] = ()
    notes: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "text": self.text, "met": self.met, "children": [c.to_dict() for c in self.children]}
        if self.notes:
            out["notes"] = list(self.notes)
        out["evidence"] = [e.to_dict() for e in self.evidence]
        return out

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True)
class Reason:
    """Why a request is not covered or belongs to another policy."""

    id: str
    text: str
    details: dict[str, list] = field(default_factory=dict)

    def details_text(self) -> str:
        """The case values that made the reason apply, as one phrase ("" when none)."""
        return "; ".join(f"{k}: {', '.join(map(safe_text, v))}" for k, v in self.details.items())

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "text": self.text}
        if self.details:
            out["details"] = {k: list(v) for k, v in self.details.items()}
        return out


@dataclass(frozen=True)
class Note:
    """A remark of the explanation tied to a rule id and a case field."""

    id: str
    text: str
    field: str

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "field": self.field}


def with_input_notes(decision: "Decision", notes: Iterable[Any]) -> "Decision":
    """The decision with its input's notes (what a FHIR Bundle left out) after its own: same format, more notes.

    A note of the input has ``where`` (the resource), ``field`` (the case
    field it would have filled) and ``text``.
    """
    extra = tuple(Note(n.where, n.text, n.field) for n in notes)
    return dataclasses.replace(decision, notes=decision.notes + extra) if extra else decision


@dataclass(frozen=True)
class Undetermined:
    """A fact the case does not establish, on which a rule depends (framework/decision.lp).

    ``id`` is the rule (or the case field) it stands in the way of,
    ``field`` the case fact as a field path, ``text`` the question a
    reviewer answers to settle it, ``value`` the fact as the case gives it.
    """

    id: str
    kind: str
    field: str
    text: str
    data: Any = None

    @property
    def value(self) -> Any:
        return _thawed(self.data)

    def to_dict(self) -> dict:
        return {"id": self.id, "field": self.field, "value": self.value, "text": self.text}


DEFERRED = ("criteria", "unmet", "blocking", "undetermined")
"""The parts of a decision the many-case paths build when first read (:meth:`DecisionBuilder.build` with ``deferred``)."""


class _Deferred:
    """A decision's deferred parts: made once, on first read, and shared by the decisions of equal answers."""

    __slots__ = ("make", "parts")

    def __init__(self, make: Callable[[], tuple]):
        self.make: Optional[Callable[[], tuple]] = make
        self.parts: Optional[tuple] = None

    def get(self) -> tuple:
        parts = self.parts
        if parts is None:
            make = self.make
            if make is None:  # made meanwhile by another thread
                return self.parts  # type: ignore[return-value]
            parts = self.parts = make()
            self.make = None
        return parts


@dataclass(frozen=True)
class Decision:
    """The decision on one case (the public decision format, via ``to_dict``).

    ``echo`` holds the case fields the KB says a decision repeats
    (``decision_echo/1``), readable as attributes (``decision.indication``).

    A decision of :func:`~kineret_asp.api.evaluate_many` or
    ``batch_evaluate`` builds its criteria tree, ``unmet``, ``blocking`` and
    ``undetermined`` when one of them is first read (equality, ``repr``,
    ``to_dict``, pickling and ``dataclasses.replace`` read them too), and
    decisions of equal answers share them: the values are the same as a
    decision built at once.
    """

    id: Optional[str]
    policy: str
    effective_date: str
    echo: tuple[tuple[str, Any], ...]
    decision: str
    authorization_months: Optional[int]
    criteria: tuple[CriterionResult, ...]
    unmet: tuple[str, ...]
    reasons: tuple[Reason, ...]
    route: str
    notes: tuple[Note, ...] = ()
    source: str = field(default="<case>", compare=False)
    blocking: tuple[str, ...] = ()
    provenance: "Optional[Provenance]" = field(default=None, compare=False)  # which rules decided (versions.py)
    undetermined: tuple[Undetermined, ...] = ()
    needs: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)
    """How many children each counted criterion needs met (needs/2): what a review page counts; not in the decision format."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for key, value in object.__getattribute__(self, "echo"):
            if key == name:
                return value
        raise AttributeError(name)

    def _undefer(self) -> dict:
        """The decision's attributes with its deferred parts made (once) and put in place."""
        state = object.__getattribute__(self, "__dict__")
        deferred = state.get("_deferred")
        if deferred is not None:
            for key, value in zip(DEFERRED, deferred.get()):
                state[key] = value
            state.pop("_deferred", None)
        return state

    def __getstate__(self) -> dict:
        """What a decision is pickled (and copied) as: every part, made."""
        return {k: v for k, v in self._undefer().items() if k != "_deferred"}

    @classmethod
    def _made(cls, fields: dict, make: Callable[[], tuple]) -> "Decision":
        """A decision of every field but :data:`DEFERRED`, which ``make()`` returns (in that order) when first read."""
        decision = object.__new__(cls)
        state = object.__getattribute__(decision, "__dict__")
        state.update(fields)
        state["_deferred"] = _Deferred(make)
        return decision

    def _for(self, case_id: Optional[str], source: str) -> "Decision":
        """The same decision for another case with an equal answer: its own id and source, every other part shared."""
        decision = object.__new__(type(self))
        state = object.__getattribute__(decision, "__dict__")
        state.update(object.__getattribute__(self, "__dict__"))
        state["id"] = case_id
        state["source"] = source
        return decision

    @property
    def approved(self) -> bool:
        return self.decision == APPROVED

    def met(self, criterion_id: str) -> Optional[bool]:
        """Whether a criterion that applies is met; None when it does not apply."""
        for root in self.criteria:
            for node in root.walk():
                if node.id == criterion_id:
                    return node.met
        return None

    def statuses(self) -> dict[str, bool]:
        """Every criterion that applies, with whether it is met."""
        return {n.id: n.met for root in self.criteria for n in root.walk()}

    def to_dict(self, shared: Optional[Callable[[Any], Any]] = None) -> dict:
        """The public decision format.

        ``shared`` writes the two parts that many decisions share (the
        criteria tree, the provenance): by default as dicts;
        :class:`DecisionEncoder` puts in their JSON text, made once.
        """
        return {
            "id": self.id,
            "policy": self.policy,
            "effective_date": self.effective_date,
            **dict(self.echo),
            "decision": self.decision,
            "authorization_months": self.authorization_months,
            "criteria": shared(self.criteria) if shared is not None else [c.to_dict() for c in self.criteria],
            "unmet": list(self.unmet),
            "blocking": list(self.blocking),
            "undetermined": [u.to_dict() for u in self.undetermined],
            "reasons": [r.to_dict() for r in self.reasons],
            "route": self.route,
            "notes": [n.to_dict() for n in self.notes],
            **({"provenance": shared(self.provenance) if shared is not None else self.provenance.to_dict()} if self.provenance is not None else {}),
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return dumps(self.to_dict(), indent=indent)


class _DeferredPart:
    """A deferred part's attribute: a decision's own value (made when first read); on the class, the field's default.

    It gives way to the value in the decision's ``__dict__`` (a decision
    built at once, or one whose parts were read), as any class attribute does.
    """

    __slots__ = ("name", "default")

    def __init__(self, name: str, default: Any):
        self.name = name
        self.default = default

    def __get__(self, decision: Optional[Decision], owner: Any = None) -> Any:
        if decision is None:
            if self.default is dataclasses.MISSING:
                raise AttributeError(self.name)
            return self.default
        return decision._undefer()[self.name]


for _field in dataclasses.fields(Decision):
    if _field.name in DEFERRED:
        setattr(Decision, _field.name, _DeferredPart(_field.name, _field.default))
del _field


class _Text:
    """JSON text standing for a value in a dict that :class:`DecisionEncoder` writes."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


_BARE_TAIL = ', "evidence": []}'
"""The end of a criterion's object without notes or evidence."""


class DecisionEncoder:
    """Decisions as one-line JSON text, the same bytes as ``encode(decision.to_dict())``, made faster.

    The criteria tree is most of a decision's text, and a batch decides
    thousands of cases over the few hundred trees :class:`DecisionBuilder`
    shares between them (and one provenance). The text of each shared part
    is made once and kept with the part itself (by identity, the part held
    so that its identity is never reused); the rest of a decision is
    encoded as usual. ``encode`` must write dicts as ``{"key": value, ...}``
    with ``", "`` and ``": "`` between items, like every JSON line the
    package writes.
    """

    def __init__(self, encode: Callable[[Any], str], size: int = TEXTS_KEPT, served: bool = False):
        self._encode = encode
        self._texts = IdentityMemo(size)
        self._heads: Memo[tuple, str] = Memo(size)  # a node's id, text and met, as the start of its object
        self._evidence = IdentityMemo(EVIDENCE_KEPT)  # a piece of evidence's text (the builder shares the objects)
        self._values: Memo[tuple, str] = Memo(EVIDENCE_KEPT)  # an evidence value's text, by its field's name and the value
        self._statuses: Memo[tuple, str] = Memo(size)  # the end of a piece of evidence's text, by its status, reason and text
        self._served = served  # a provenance as the HTTP service gives it (Provenance.served)

    def shared(self, part: Any) -> _Text:
        """The JSON text of a shared part (a criteria tuple, a provenance), made once."""

        def make() -> _Text:
            if hasattr(part, "to_dict"):
                shown = part.served() if self._served and hasattr(part, "served") else part
                return _Text(self._encode(shown.to_dict()))
            return _Text(self._nodes(part))

        return self._texts.of(part, make)

    def _nodes(self, nodes: tuple[CriterionResult, ...]) -> str:
        """A list of criteria as JSON text, put together from each node's parts (the bytes of encoding the list's dicts).

        A tree new to the encoder is mostly nodes and evidence it has written
        before (the trees of a batch differ in a few pieces of evidence):
        each node's start and each piece of evidence is encoded once.
        """
        return "[" + ", ".join([self._node(n) for n in nodes]) + "]"

    def _node(self, node: CriterionResult) -> str:
        return f'{self.head(node)}, "children": {self._nodes(node.children)}{self.tail(node.notes, node.evidence)}'

    def head(self, node: CriterionResult) -> str:
        """A node's object up to its children: its id, text and met (made once for each)."""
        key = (node.id, node.text, node.met)
        head = self._heads.get(key)
        if head is None:
            head = self._heads.put(key, self._encode({"id": node.id, "text": node.text, "met": node.met})[:-1])
        return head

    def tail(self, notes: tuple[str, ...], evidence: Iterable[Evidence]) -> str:
        """A node's object after its children: its notes (when it has some), its evidence, the closing brace."""
        if not notes and not evidence:
            return _BARE_TAIL
        return f'{self.notes_part(notes)}, "evidence": [{", ".join([self.evidence(e) for e in evidence])}]}}'

    def notes_part(self, notes: tuple[str, ...]) -> str:
        """A node's notes as the part of its object they are (nothing when it has none)."""
        return f', "notes": {self._encode(list(notes))}' if notes else ""

    def list_text(self, items: list) -> str:
        """A list of plain values (dicts, strings) as JSON text, the bytes it has inside a decision's."""
        return self._encode(items)

    def evidence(self, item: Evidence) -> str:
        """A piece of evidence's text (made once for each: the builder shares the objects)."""
        return self._evidence.of(item, lambda: self.evidence_text(item.field, item.data, item.status, item.reason, item.text))

    def evidence_text(self, field: str, data: Any, status: str, reason: Optional[str], text: str) -> str:
        """The text of ``Evidence(field, _, status, reason, text, data).to_dict()``, from the text of its value and of its status (each made once).

        A field's values are of one kind, so the value's text is kept by the
        field's name, the value's type and the value (``1`` and ``true``
        never share one).
        """
        key = (field.split("[", 1)[0], type(data), data)
        try:
            value = self._values.get(key)
        except TypeError:  # a value that cannot be hashed: written each time
            key, value = None, None
        if value is None:
            value = self._encode(_thawed(data))
            if key is not None:
                self._values.put(key, value)
        state = (status, reason, text)
        tail = self._statuses.get(state)
        if tail is None:
            tail = self._statuses.put(state, self._encode({"status": status, **({"reason": reason} if reason is not None else {}), "text": text})[1:])
        return f'{{"field": {self._encode(field)}, "value": {value}, {tail}'

    def fields(self, decision: Decision) -> dict:
        """The decision format's fields, the shared parts as their text (for :meth:`encode`)."""
        return decision.to_dict(self.shared)

    def encode(self, fields: dict) -> str:
        """A dict of :meth:`fields` (some may be removed or added) as one line of JSON."""
        encode = self._encode
        out: list[str] = []
        run: dict = {}
        for key, value in fields.items():
            if type(value) is _Text:
                if run:
                    out.append(encode(run)[1:-1])
                    run = {}
                out.append(f"{encode(key)}: {value.text}")
            else:
                run[key] = value
        if run:
            out.append(encode(run)[1:-1])
        return "{" + ", ".join(out) + "}"


class KbAnswerError(KineretError):
    """The KB's answer for a case is malformed (a KB bug, not a case error)."""


def field_path(value: Value) -> str:
    """``f(1)`` -> ``f[1]``; ``plan`` -> ``plan``: a note's place as a case field path."""
    if isinstance(value, tuple):
        name, *args = value
        return name + "".join(f"[{a}]" for a in args)
    return str(value)


def _plain_value(value: Value) -> Any:
    """A value the solver answered, as the case format writes it."""
    return str(value) if isinstance(value, Const) else value


def _one(output: dict[str, list[tuple]], name: str, required: bool = True) -> Optional[Value]:
    values = output.get(name, [])
    if len(values) > 1:
        raise KbAnswerError(f"the KB answered {len(values)} values for {name}: {sorted(map(repr, values))}")
    if not values:
        if required:
            raise KbAnswerError(f"the KB gave no {name}")
        return None
    return values[0][0]


class DecisionBuilder:
    """Arranges answers into decisions for one KB; criteria trees are memoized (few patterns recur)."""

    def __init__(self, kb: "KnowledgeBase"):
        self.kb = kb
        self.vocab = kb.vocabulary
        self.rank = self.vocab.criterion_rank()
        self.reason_rank = {r: i for i, r in enumerate(self.vocab.reason_texts)}
        self.echo_fields = [str(a[0]) for a in kb.facts("decision_echo", 1)]
        self.evidence_texts = {k: str(t) for k, t in kb.facts("evidence_text", 2)}
        self.entry_texts = entry_templates(kb)
        self._trees: Memo[tuple, tuple[tuple[CriterionResult, ...], tuple[str, ...]]] = Memo(TREES_KEPT)
        self._blocking: Memo[tuple, tuple[str, ...]] = Memo(BLOCKING_KEPT)
        self._evidence: Memo[tuple, tuple[tuple, Evidence]] = Memo(EVIDENCE_KEPT)
        self._entries: Memo[tuple, list] = Memo(EVIDENCE_KEPT)  # an entry's words (made when first asked for) and value, by its values
        self._notes: Memo[frozenset, tuple] = Memo(NOTES_KEPT)  # an answer's notes, by its note atoms
        self._provenance: dict[Optional[str], Any] = {}
        self._needs: Memo[tuple, tuple] = Memo(BLOCKING_KEPT)  # what needs/2 says, by its atoms (a few hundred lists recur)
        self._shape_names: dict[tuple, tuple] = {}  # the predicates a shape key reads, by the order the engine writes them in
        self._statuses: Memo[Any, tuple[str, Optional[str], str]] = Memo(BLOCKING_KEPT)  # a status's words (a few: counted, and one for each reason)

    def forget(self) -> None:
        """Drop what was remembered between cases (as a new process starts), for fair measurements."""
        for memo in (self._trees, self._blocking, self._evidence, self._entries, self._notes, self._statuses, self._needs):
            memo.data.clear()

    def id_order(self, cid: str) -> tuple:
        return (0, self.rank[cid], "") if cid in self.rank else (1, 0, cid)

    def tree(self, applies: frozenset, unmet_ids: frozenset, node_notes: tuple, node_evidence: tuple = ()) -> tuple[tuple[CriterionResult, ...], tuple[str, ...]]:
        key = (applies, unmet_ids, node_notes, node_evidence)
        hit = self._trees.get(key)
        if hit is not None:
            return hit
        vocab = self.vocab
        notes = dict(node_notes)
        evidence = dict(node_evidence)

        def node(cid: str) -> CriterionResult:
            crit = vocab.criteria.get(cid)
            if crit is None:
                raise KbAnswerError(f"the KB says criterion {cid!r} applies but declares no criterion({cid!r}, ...)")
            kids = tuple(node(k) for k in vocab.children.get(cid, ()) if k in applies)
            return CriterionResult(cid, crit.text, cid not in unmet_ids, kids, notes.get(cid, ()), evidence.get(cid, ()))

        roots = sorted((c for c in applies if c in vocab.criteria and vocab.criteria[c].parent is None), key=self.id_order)
        criteria = tuple(node(r) for r in roots)
        unmet = tuple(n.id for root in criteria for n in root.walk() if not n.met)
        return self._trees.put(key, (criteria, unmet))

    def evidence(self, case: "Case", atoms: list[tuple]) -> tuple[tuple[str, tuple[Evidence, ...]], ...]:
        """Each criterion's evidence, with the case's values filled in, in the case's order."""
        per_node: dict[str, list[tuple[tuple, Evidence]]] = {}
        for cid, where, status in atoms:
            per_node.setdefault(str(cid), []).append(self.ranked_evidence(case, where, status))
        return tuple((cid, tuple(e for _, e in sorted(items, key=_first))) for cid, items in sorted(per_node.items()))

    def field_ranks(self, case: "Case") -> dict[str, int]:
        """Evidence comes in the order the case format declares its fields (entries by number)."""
        schema = case.schema
        return self.kb.derived("field_ranks", lambda: {f.name: i for i, f in enumerate(schema.fields)}) if schema is not None else {}

    def resolve(self, case: "Case", where: Value, words: bool = True) -> tuple[str, str, Any]:
        """A field path term as (path, words, value): ``f(2)`` entry 2 of an entries field, ``f(v)`` an item of a list, ``f`` a field.

        ``words``: False when only the path and the value are read (the words are then "").
        """
        schema = case.schema
        if schema is None:
            raise KbAnswerError("evidence needs a validated case")
        name, arg = (where[0], where[1]) if isinstance(where, tuple) and len(where) == 2 else (str(where), None)
        f = schema.by_name.get(name)
        if f is None:
            raise KbAnswerError(f"the KB gives evidence about {field_path(where)}, which is not a case field")
        values = case.get(name)
        if f.kind.name == ENTRIES and isinstance(arg, int) and values is not None and 0 <= arg < len(values):
            entry = values[arg]
            key = (name, entry.ordered())
            try:
                shown = self._entries.get(key)
            except TypeError:  # a value that cannot be hashed: worded every time
                key, shown = None, None
            if shown is None:
                shown = [None, _frozen(entry.to_dict())]  # the entry's words (made when first asked for) and value
                if key is not None:
                    self._entries.put(key, shown)
            if words and shown[0] is None:
                shown[0] = entry_words(schema, self.entry_texts, f, entry)
            return f"{name}[{arg}]", shown[0] if words else "", shown[1]
        if f.kind.name == LIST and arg is not None and values is not None:
            plain = _plain_value(arg)
            index = next((i for i, v in enumerate(values) if v == plain), None)
            path = f"{name}[{index}]" if index is not None else name
            return path, schema.value_label(f.kind, plain) if words else "", plain
        if arg is None:
            return name, schema.value_label(f.kind, values) if words and values is not None else "", _frozen(values)
        raise KbAnswerError(f"the KB gives evidence about {field_path(where)}, which the case does not have")

    @staticmethod
    def shown_value(case: "Case", where: Value) -> Any:
        """The case value a piece of evidence about ``where`` shows (with what locates it), hashable."""
        if type(where) is tuple and len(where) == 2:
            name, arg = where
        else:
            name, arg = str(where), None
        value = case.get(name)
        if type(arg) is int and type(value) is tuple and 0 <= arg < len(value):
            value = value[arg].ordered() if hasattr(value[arg], "ordered") else value[arg]  # the entry the fact is
        return value

    def cached_evidence(self, case: "Case", where: Value, status: Value) -> Evidence:
        """One piece of evidence, memoized by the case values it shows (a batch repeats few of them)."""
        return self.ranked_evidence(case, where, status)[1]

    def evidence_key(self, case: "Case", where: Value, status: Value) -> tuple:
        """What a piece of evidence depends on: its place and status, the case value it shows (equal keys, equal evidence)."""
        return (where, status, self.shown_value(case, where))

    def ranked_evidence(self, case: "Case", where: Value, status: Value, key: Optional[tuple] = None) -> tuple[tuple, Evidence]:
        """A piece of evidence with its place among a criterion's (field order, path, status), memoized by :meth:`evidence_key`."""
        key = key or self.evidence_key(case, where, status)
        hit = self._evidence.get(key)
        if hit is None:
            item = self.one_evidence(case, where, status)
            hit = self._evidence.put(key, (self._rank(case, where, item.field, item.status, item.reason), item))
        return hit

    def _rank(self, case: "Case", where: Value, path: str, status: str, reason: Optional[str]) -> tuple:
        """A piece of evidence's place among a criterion's: the field's place in the case format, its path, its status."""
        ranks = self.field_ranks(case)
        name = where[0] if isinstance(where, tuple) else str(where)
        return (ranks.get(name, len(ranks)), len(path), path, status, reason or "")

    def evidence_parts(self, case: "Case", where: Value, status: Value) -> tuple[tuple, tuple[str, Any, str, Optional[str], str]]:
        """A piece of evidence's rank and what its record shows (field, value, status, reason, text), without the words naming it.

        What :meth:`one_evidence` makes but its ``subject``: a record writes
        no words for the fact, a reviewer's page does.
        """
        path, _, value = self.resolve(case, where, words=False)
        shown, reason, text = self.status_parts(status)
        return self._rank(case, where, path, shown, reason), (path, value, shown, reason, text)

    def status_parts(self, status: Value) -> tuple[str, Optional[str], str]:
        """A piece of evidence's status as (status, reason, text), in the KB's words (made once for each status)."""
        found = self._statuses.get(status)
        if found is None:  # made here, kept below
            if isinstance(status, tuple) and len(status) == 2 and status[0] == NOT_COUNTED:
                reason = status[1]
                words = self.evidence_texts.get(reason, str(reason))
                found = (NOT_COUNTED, str(reason), self.vocab.word("not_counted", reason=words))
            elif str(status) == COUNTED:
                found = (COUNTED, None, self.evidence_texts.get(COUNTED, COUNTED))
            else:
                raise KbAnswerError(f"the KB gives evidence with status {status!r}; expected {COUNTED} or {NOT_COUNTED}(Reason)")
            self._statuses.put(status, found)
        return found

    def one_evidence(self, case: "Case", where: Value, status: Value) -> Evidence:
        path, subject, value = self.resolve(case, where)
        shown, reason, text = self.status_parts(status)
        return Evidence(path, subject, shown, reason, text, value)

    def shape_key(self, case: "Case", output: dict[str, list[tuple]], chosen_by: Optional[str] = None) -> tuple:
        """Everything :meth:`build` reads but the case's id and source and what the answer shows of the case's own facts.

        That is the answer's atoms but its evidence, notes and reasons'
        details, the fields a decision repeats (``decision_echo/1``) and how
        the version was chosen. Decisions of equal keys differ only in each
        criterion's evidence and notes, the notes, the reasons' details and
        the undetermined facts (what
        :class:`~kineret_asp.decisions.record_texts.RecordTexts` puts into
        a shape's template). Hashing it raises TypeError when a value it
        holds cannot be hashed.

        The atoms are kept in the order the engine read them, not as sets:
        clingo gives the same atoms in the same order, chunk after chunk
        (measured: 418 shapes either way in 10,000 cases), and two orders of
        one answer are only two keys of equal decisions, each built from its
        own answer. A tuple is hashed and compared faster than a set.
        """
        order = tuple(output)  # the predicates, in the order the engine writes them (one order for a KB)
        names = self._shape_names.get(order)
        if names is None:
            names = (order, tuple(name for name in order if name not in _OWN_PARTS))
            if len(self._shape_names) < 100:
                self._shape_names[order] = names
        return (chosen_by, tuple(map(case.get, self.echo_fields)), names[0], tuple(map(tuple, map(output.__getitem__, names[1]))))

    def build(self, case: "Case", output: dict[str, list[tuple]], chosen_by: Optional[str] = None, deferred: bool = False, shape: bool = False) -> Decision:
        """Arrange one case's answer atoms into a Decision.

        ``deferred``: the criteria tree, ``unmet``, ``blocking`` and
        ``undetermined`` are made when first read (the same values).
        ``shape``: the criteria carry no evidence and no notes (the
        decision of the answer's shape, :meth:`shape_key`: trees shared by
        many shapes, each case's own parts put in by its text's maker).
        """
        vocab = self.vocab
        notes, by_node = self.notes(output.get(NOTE, ()))
        reasons = self.reasons(output.get(REASON, ()), output.get(REASON_DETAIL, ()))
        months = _one(output, "authorization_months", required=False)
        needs = self.needs(output.get("needs", ()))

        def parts() -> tuple:
            """The criteria tree, unmet, blocking and undetermined (:data:`DEFERRED`)."""
            applies = frozenset([str(a[0]) for a in output.get("applies", ())])
            unmet_ids = frozenset([str(a[0]) for a in output.get("unmet", ())])
            node_evidence = () if shape else self.evidence(case, output.get(EVIDENCE, []))
            node_notes = () if shape else tuple((cid, texts) for cid, texts in by_node if cid in applies)
            criteria, unmet = self.tree(applies, unmet_ids, node_notes, node_evidence)
            refers = tuple(sorted((str(c), str(d)) for c, d in output.get("refers_to", [])))
            block_key = (applies, unmet_ids, needs, refers)
            blocked = self._blocking.get(block_key)
            if blocked is None:
                blocked = self._blocking.put(block_key, blocking(criteria, dict(needs), dict(refers)))
            undetermined = self.undetermined(case, output.get(UNDETERMINED, ()))
            if undetermined and not reasons:  # what stands in the way: the facts to establish, after the criteria
                blocked = tuple(dict.fromkeys(blocked + tuple(u.id for u in undetermined)))
            return criteria, unmet, blocked, undetermined

        made = None if deferred else parts()  # built at once: any malformed answer is reported here, as always
        fields = dict(
            id=case.id,
            policy=vocab.policy_id,
            effective_date=vocab.effective_from,
            echo=tuple([(name, case.get(name)) for name in self.echo_fields]),
            decision=str(_one(output, "decision")),
            authorization_months=int(months) if months is not None else None,
            reasons=reasons,
            route=str(_one(output, "route")),
            notes=notes,
            source=case.source,
            provenance=self.provenance(chosen_by),
            needs=needs,
        )
        if made is None:
            return Decision._made(fields, parts)
        return Decision(**fields, **dict(zip(DEFERRED, made)))

    def needs(self, atoms: Collection[tuple]) -> tuple[tuple[str, int], ...]:
        """How many children each counted criterion needs met (needs/2), by criterion id (made once for each list of atoms)."""
        key = tuple(atoms)
        found = self._needs.get(key)
        if found is None:
            found = self._needs.put(key, tuple(sorted((str(c), int(n)) for c, n in atoms if isinstance(n, int))))
        return found

    def reasons(self, atoms: Iterable[tuple], details: Iterable[tuple]) -> tuple[Reason, ...]:
        """Why a request is not covered (or belongs to another policy), in the KB's order, each with the case values that made it apply."""
        if not atoms:
            return ()
        found: dict[str, dict[str, list]] = {}
        for rid, detail in sorted(details, key=repr):
            name, value = (detail[0], detail[1]) if isinstance(detail, tuple) and len(detail) == 2 else (str(detail), None)
            found.setdefault(str(rid), {}).setdefault(name, []).append(str(value) if isinstance(value, Const) else value)
        rank = self.reason_rank
        texts = self.vocab.reason_texts
        return tuple(Reason(rid, texts.get(rid, rid), found.get(rid, {})) for rid in sorted({str(a[0]) for a in atoms}, key=lambda r: (rank.get(r, len(rank)), r)))

    def notes(self, atoms: Collection[tuple]) -> tuple[tuple[Note, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
        """The notes of an answer, in the KB's order, and each criterion's note texts (once each), by criterion id in order (made once for each set of atoms)."""
        if not atoms:
            return (), ()
        key = tuple(atoms)  # in the engine's order: another order of the same notes is another entry of the same value
        hit = self._notes.get(key)
        if hit is None:
            hit = self._notes.put(key, self._made_notes(key))
        return hit

    def _made_notes(self, atoms: Iterable[tuple]) -> tuple[tuple[Note, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
        texts = self.vocab.note_texts
        notes: list[Note] = []
        by_node: dict[str, list[str]] = {}
        for cid, kind, where in sorted(atoms, key=lambda a: (self.id_order(str(a[0])), repr(a[1]), repr(a[2]))):
            text = texts.get(kind, str(kind))
            notes.append(Note(str(cid), text, field_path(where)))
            if text not in by_node.get(str(cid), ()):
                by_node.setdefault(str(cid), []).append(text)
        return tuple(notes), tuple(sorted((cid, tuple(v)) for cid, v in by_node.items()))

    def undetermined(self, case: "Case", atoms: Any) -> tuple[Undetermined, ...]:
        """The facts the case does not establish, worded as questions, in the order of the case's fields."""
        out = []
        texts = self.vocab.undetermined_texts
        for rid, kind, where in atoms:
            path, subject, value = self.resolve(case, where)
            template = texts.get(str(kind))
            if template is None:
                raise KbAnswerError(f"the KB says a fact is undetermined as {kind!r} but gives no undetermined_text({kind}, ...)")
            out.append(Undetermined(str(rid), str(kind), path, fill(template, {"subject": subject}), value))
        ranks = self.field_ranks(case)
        out.sort(key=lambda u: (self.id_order(u.id), ranks.get(u.field.split("[")[0], len(ranks)), u.field))
        return tuple(out)

    def provenance(self, chosen_by: Optional[str]) -> "Provenance":
        found = self._provenance.get(chosen_by)
        if found is None:
            from ..cases.versions import GIVEN, provenance

            found = self._provenance[chosen_by] = provenance(self.kb, chosen_by or GIVEN)
        return found


def _first(pair: tuple) -> Any:
    return pair[0]


def blocking(criteria: tuple[CriterionResult, ...], needs: dict[str, int], refers: dict[str, str]) -> tuple[str, ...]:
    """The unmet criteria that stand between a case and approval, in tree order.

    Under an unmet criterion that needs N of its children, the unmet
    children with the fewest unmet criteria below them are taken, as many
    as are still missing; when the choice is open (two children as close as
    each other for the last place), the criterion itself is named, since any
    of them will do. A criterion without children (or whose rule the KB
    does not count, needs/2) blocks itself; one that refers to another
    (refers_to/2) blocks by that one's blockers.
    """
    nodes = {n.id: n for root in criteria for n in root.walk()}
    order = {cid: i for i, cid in enumerate(nodes)}
    costs: dict[str, float] = {}

    def target(node: CriterionResult, seen: frozenset) -> Optional[CriterionResult]:
        other = refers.get(node.id)
        return nodes.get(other) if other is not None and other not in seen else None

    def cost(node: CriterionResult, seen: frozenset = frozenset()) -> float:
        if node.met:
            return 0
        if node.id in costs:
            return costs[node.id]
        other = target(node, seen | {node.id})
        if other is not None:
            value = cost(other, seen | {node.id})
        elif not node.children or node.id not in needs:
            value = 1
        else:
            ranked = sorted(cost(k, seen | {node.id}) for k in node.children)
            need = needs[node.id]
            value = sum(ranked[:need]) + max(0, need - len(ranked))
        costs[node.id] = value
        return value

    found: list[str] = []

    def walk(node: CriterionResult, seen: frozenset) -> None:
        if node.met or node.id in seen:
            return
        seen = seen | {node.id}
        other = target(node, seen)
        if other is not None:
            walk(other, seen)
            return
        if not node.children or node.id not in needs:
            found.append(node.id)
            return
        unmet = sorted((k for k in node.children if not k.met), key=lambda k: (cost(k), order[k.id]))
        missing = needs[node.id] - (len(node.children) - len(unmet))
        if missing <= 0 or missing > len(unmet):
            found.append(node.id)
            return
        if len(unmet) > missing and cost(unmet[missing - 1]) == cost(unmet[missing]):
            found.append(node.id)  # an open choice: any of the closest will do
            return
        for child in unmet[:missing]:
            walk(child, seen)

    for root in criteria:
        walk(root, frozenset())
    return tuple(dict.fromkeys(found))


def builder(kb: "KnowledgeBase") -> DecisionBuilder:
    """The decision builder of a KB, made once per loaded KB."""
    return kb.derived("decision_builder", lambda: DecisionBuilder(kb))


def build_decision(case: "Case", output: dict[str, list[tuple]], kb: "KnowledgeBase", chosen_by: "Optional[str | Route]" = None) -> Decision:
    """Arrange one case's answer atoms into a Decision (``chosen_by``: how the version was chosen, or a Route: how the version and the policy were)."""
    return builder(kb).build(case, output, chosen_by)


def verdict(decision: Decision, vocab: Vocabulary, with_unmet: bool = True) -> str:
    """The decision's headline words: APPROVED for up to 12 months, CRITERIA NOT MET (blocking: ...)."""
    words = vocab.decision_texts.get(decision.decision, decision.decision)
    if decision.approved:
        return vocab.counted("approved_for", decision.authorization_months, decision=words, months=decision.authorization_months)
    if decision.reasons:
        return f"{words} ({', '.join(r.id for r in decision.reasons)})"
    if with_unmet and decision.blocking:
        return f"{words} ({vocab.word('blocking_label', ids=', '.join(decision.blocking))})"
    if with_unmet and decision.unmet:
        return f"{words} ({vocab.word('unmet_label', ids=', '.join(decision.unmet))})"
    return words


def header_facts(vocab: Vocabulary, case: "Optional[Case]", kb: "Optional[KnowledgeBase]") -> str:
    """The case fields a decision's header shows (header_field/3), in the KB's words; "" when none."""
    if case is None or case.schema is None or kb is None:
        return ""
    w = vocab.word
    facts = []
    for name, label, absent in kb.facts("header_field", 3):
        f = case.schema.by_name.get(str(name))
        value = case.get(str(name))
        shown = case.schema.value_label(f.kind, value) if f is not None and value is not None else str(absent)
        facts.append(w("field_line", label=label, value=shown))
    return w("field_separator").join(facts)


def node_notes(decision: Decision, node: CriterionResult) -> list[str]:
    """A node's notes a reader still needs once its evidence is shown: those about other case facts."""
    shown = {e.field for e in node.evidence}
    about = [n for n in decision.notes if n.id == node.id]
    if not about:
        return list(node.notes)
    return [t for t in node.notes if not all(n.field in shown for n in about if n.text == t)]


def render_text(decision: Decision, vocab: Vocabulary, case: "Optional[Case]" = None, kb: "Optional[KnowledgeBase]" = None) -> str:
    """The decision as a reviewer reads it: header, criteria tree, reasons, decision."""
    w = vocab.word
    lines = [w("decision_header", policy=vocab.policy_id, title=vocab.title, drug=vocab.drug_name, effective=decision.effective_date)]
    lines += provenance_lines(decision, vocab, case)
    lines.append(w("case_line", id=decision.id or w("no_id"), source=decision.source))
    facts = header_facts(vocab, case, kb)
    if facts:
        lines.append(facts)
    if decision.criteria:
        lines.append("")
        lines.append(w("criteria_heading"))
        pad = " " * (len(w("unmet_mark")) + 3)

        def show(node: CriterionResult, depth: int) -> None:
            mark = w("met_mark") if node.met else w("unmet_mark")
            lines.append(f"{'  ' * depth}{mark} {node.id}  {node.text}")
            for note in node_notes(decision, node):
                lines.append(f"{'  ' * depth}{pad}{w('note_line', text=note)}")
            for e in node.evidence:
                lines.append(f"{'  ' * depth}{pad}{w('evidence_line', field=e.field, subject=e.subject, status=e.text)}")
            for child in node.children:
                show(child, depth + 1)

        for root in decision.criteria:
            show(root, 1)
    if decision.reasons:
        lines.append("")
        lines.append(w("reasons_heading"))
        for r in decision.reasons:
            extra = r.details_text()
            lines.append(f"  {r.id}  {r.text}" + (f" ({extra})" if extra else ""))
    if decision.undetermined:
        lines.append("")
        lines.append(w("undetermined_heading"))
        for u in decision.undetermined:
            lines.append(f"  {u.id} ({u.field})  {u.text}")
    loose = [n for n in decision.notes if decision.met(n.id) not in (True, False)]
    if loose:
        lines.append("")
        lines.append(w("notes_heading"))
        for n in loose:
            lines.append(f"  {n.id} ({n.field})  {n.text}")
    lines.append("")
    lines.append(w("verdict_line", verdict=verdict(decision, vocab)))
    lines.append(w("route_line", route=decision.route, text=vocab.route_texts.get(decision.route, decision.route)))
    return "\n".join(lines) + "\n"


def provenance_lines(decision: Decision, vocab: Vocabulary, case: "Optional[Case]" = None) -> list[str]:
    """The header lines that say which rules decided: version, how it was chosen, KB folder, hashes."""
    p = decision.provenance
    if p is None:
        return []
    w = vocab.word
    date = None
    if case is not None and case.schema is not None:
        from ..knowledge.schema import DATE_OF_SERVICE

        name = case.schema.role(DATE_OF_SERVICE)
        date = case.get(name) if name else None
    how = w(f"chosen_by_{p.chosen_by}", date=date or "")
    policy = []
    if p.policy_chosen_by in SHOWN_POLICY_CHOICES:  # several policies: say how this one was chosen
        drug, field_, value = p.claim or ("", "", "")
        chosen = w(f"policy_chosen_by_{p.policy_chosen_by}", drug=drug, field=field_, value=value)
        policy = [w("policy_line", policy=p.policy, chosen=chosen)]
    return [
        w("rules_line", policy=p.policy, version=p.version, period=f"{p.version}..{p.effective_to or ''}", chosen=how),
        *policy,
        w("kb_line", kb=p.kb, folder=p.folder),
        w("hash_line", rules=p.rules_sha256, framework=p.framework_sha256, package=p.package_version),
    ]
