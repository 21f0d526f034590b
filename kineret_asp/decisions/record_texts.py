"""A batch's decision records as JSON text: one template per shape of answer, each case's own parts put in.

A batch decides thousands of cases over a few hundred shapes of answer:
which criteria apply and are met, the reasons, the route, what blocks
approval. Cases of one shape differ only in what the answer shows of their
own facts: each criterion's evidence (a history entry, a list item, a
value), the notes (which entry a note is about), the reasons (the drugs
that made one apply) and the facts left undetermined. A shape's text is made once, from the decision of the shape
(:meth:`~kineret_asp.decisions.decision.DecisionBuilder.build` with
``shape``) written by the
:class:`~kineret_asp.decisions.decision.DecisionEncoder`, cut where each
of those parts goes; each case's parts are
made by the same builder and encoder (every piece of evidence once per
value it shows, the notes and the reasons once per set of atoms, in
bounded tables) and put
in with one join. The bytes are those of encoding the decision's
``to_dict()``.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import TYPE_CHECKING, Any, Optional

from ..memo import IdentityMemo, Table
from .decision import _BARE_TAIL, EVIDENCE, EVIDENCE_KEPT, NOTE, REASON, REASON_DETAIL, UNDETERMINED, CriterionResult, Decision, DecisionBuilder, DecisionEncoder, _first, _Text

if TYPE_CHECKING:  # pragma: no cover
    from ..cases.case import Case

SHAPES_KEPT = 5_000
"""Templates kept, by shape of answer (a few hundred recur in a batch)."""
TREES_KEPT = 1_000
"""Criteria trees' template texts kept (fewer than the shapes: many shapes share a tree)."""
NOTES_KEPT = 1_000
"""Notes texts kept, by the answer's note atoms (a hundred or two recur)."""
REASONS_KEPT = 1_000
"""Reasons texts kept, by the answer's reason atoms and their details (a few hundred recur: the details name a case's drugs)."""

_NODE, _UNDETERMINED, _REASONS, _NOTES = "\x00", "\x01", "\x02", "\x03"
"""The marks a decision's text is cut at: a criterion's notes and evidence, the undetermined facts, the reasons, the notes.
A JSON text never holds these characters raw (the encoder escapes every control character)."""
_MARKS = re.compile("([\x00-\x03])")
_OWN = {_UNDETERMINED: "undetermined", _REASONS: "reasons", _NOTES: "notes"}  # the template's fields for the parts that are not a criterion's
_EMPTY = "[]"


class Shape:
    """A shape's template: its text cut where a case's own parts go.

    ``fragments[i]`` comes before cut ``i`` and ``last`` after the last
    one; ``empty[i]`` is what cut ``i`` holds when the case has nothing of
    its own there; ``at`` gives the cut of each criterion (by id) and of the
    undetermined facts, the reasons and the notes (by field name).
    """

    __slots__ = ("fragments", "last", "empty", "at")

    def __init__(self, fragments: tuple[str, ...], last: str, empty: list[str], at: dict[str, int]):
        self.fragments = fragments
        self.last = last
        self.empty = empty
        self.at = at

    def text(self, parts: list[str]) -> str:
        """The text with ``parts[i]`` at cut ``i``."""
        return "".join(chain.from_iterable(zip(self.fragments, parts))) + self.last


class RecordTexts:
    """Decision records after the id, one template per shape of answer, for one encoder (a batch's)."""

    def __init__(self, encoder: DecisionEncoder, size: int = SHAPES_KEPT):
        self.encoder = encoder
        self.shapes: Table = Table(size)
        self.trees = IdentityMemo(TREES_KEPT)  # a criteria tuple's text with its marks, and its criteria in the marks' order
        self.notes: Table = Table(NOTES_KEPT)
        self.reasons: Table = Table(REASONS_KEPT)
        self.pieces: Table = Table(EVIDENCE_KEPT)  # a piece of evidence's rank and text

    def text(self, made: DecisionBuilder, case: "Case", output: dict[str, list[tuple]], chosen_by: Optional[str] = None) -> str:
        """The decision's JSON text after its id: what follows ``{"id": ..., ``, the bytes of its ``to_dict()``."""
        where = str(made.kb.path)
        key = (where, made.shape_key(case, output, chosen_by))
        try:
            shape = self.shapes.get(key)
        except TypeError:  # a value that cannot be hashed: built as usual
            fields = self.encoder.fields(made.build(case, output, chosen_by))
            fields.pop("id")
            return self.encoder.encode(fields)[1:]
        if shape is None:
            shape = self.shapes.put(key, self._template(made.build(case, output, chosen_by, shape=True)))
        parts = shape.empty.copy()
        at = shape.at
        notes = output.get(NOTE)
        node_notes: dict[str, str] = {}
        if notes:
            parts[at["notes"]], node_notes = self._notes(made, where, notes)
        reasons = output.get(REASON)
        if reasons:
            parts[at["reasons"]] = self._reasons(made, where, reasons, output.get(REASON_DETAIL, ()))
        found = output.get(EVIDENCE)
        evidence = self._evidence(made, where, case, found) if found else {}
        for cid, shown in evidence.items():
            cut = at.get(cid)
            if cut is not None:
                parts[cut] = f'{node_notes.get(cid, "")}, "evidence": [{shown}]}}'
        for cid, noted in node_notes.items():
            cut = at.get(cid)
            if cut is not None and cid not in evidence:
                parts[cut] = f'{noted}, "evidence": []}}'
        if output.get(UNDETERMINED):
            parts[at["undetermined"]] = self.encoder.list_text([u.to_dict() for u in made.undetermined(case, output[UNDETERMINED])])
        return shape.text(parts)

    def _notes(self, made: DecisionBuilder, where: str, atoms: Any) -> tuple[str, dict[str, str]]:
        """The notes' text and each criterion's notes as the part of its object they are, once for each set of note atoms."""
        key = (where, tuple(atoms))  # in the engine's order (see DecisionBuilder.shape_key)
        hit = self.notes.get(key)
        if hit is None:
            notes, by_node = made.notes(atoms)
            part = self.encoder.notes_part
            hit = self.notes.put(key, (self.encoder.list_text([n.to_dict() for n in notes]), {cid: part(texts) for cid, texts in by_node}))
        return hit

    def _reasons(self, made: DecisionBuilder, where: str, atoms: Any, details: Any) -> str:
        """The reasons' text, once for each set of reason atoms and details."""
        key = (where, tuple(atoms), tuple(details))
        hit = self.reasons.get(key)
        if hit is None:
            hit = self.reasons.put(key, self.encoder.list_text([r.to_dict() for r in made.reasons(atoms, details)]))
        return hit

    def _evidence(self, made: DecisionBuilder, where: str, case: "Case", atoms: Any) -> dict[str, str]:
        """Each criterion's evidence as the text inside its list, in the builder's order (each piece made once for the value it shows)."""
        pieces = self.pieces
        shown = made.shown_value
        per_node: dict[str, list[tuple[tuple, str]]] = {}
        for cid, place, status in atoms:
            key = (where, place, status, shown(case, place))  # the piece's place and status, the value it shows (DecisionBuilder.evidence_key)
            hit = pieces.get(key)
            if hit is None:
                rank, parts = made.evidence_parts(case, place, status)
                hit = pieces.put(key, (rank, self.encoder.evidence_text(*parts)))
            found = per_node.get(cid)
            if found is None:
                per_node[cid] = [hit]
            else:
                found.append(hit)
        return {cid: items[0][1] if len(items) == 1 else ", ".join([t for _, t in sorted(items, key=_first)]) for cid, items in per_node.items()}

    def _tree(self, criteria: tuple[CriterionResult, ...]) -> tuple[str, tuple[str, ...]]:
        """A criteria tuple's text with a mark where each criterion's notes and evidence go, and the criteria in the marks' order."""
        head = self.encoder.head
        ids: list[str] = []

        def tree(items: tuple[CriterionResult, ...]) -> str:
            return "[" + ", ".join([node(n) for n in items]) + "]"

        def node(item: CriterionResult) -> str:
            children = tree(item.children)
            ids.append(item.id)  # in the order the marks come: a criterion's after its children's
            return f'{head(item)}, "children": {children}{_NODE}'

        text = tree(criteria)
        return text, tuple(ids)

    def _template(self, decision: Decision) -> Shape:
        """The template of a shape's decision: its text after the id, cut wherever a case's own parts go."""
        criteria = decision.criteria
        text, ids = self.trees.of(criteria, lambda: self._tree(criteria))
        fields = decision.to_dict(lambda part: _Text(text) if part is criteria else self.encoder.shared(part))
        fields.pop("id")
        for mark, name in _OWN.items():
            fields[name] = _Text(mark)
        cut = _MARKS.split(self.encoder.encode(fields)[1:])
        marks = cut[1::2]
        if marks.count(_NODE) != len(ids) or len(marks) != len(ids) + len(_OWN):  # pragma: no cover - the encoder wrote a mark of its own
            raise AssertionError("a decision's text holds a template mark")
        own = iter(ids)
        at = {next(own) if m == _NODE else _OWN[m]: i for i, m in enumerate(marks)}
        return Shape(tuple(cut[0:-1:2]), cut[-1], [_BARE_TAIL if m == _NODE else _EMPTY for m in marks], at)
