"""The adaptive questionnaire: the one question that best narrows what is missing.

The state of a dialogue is a partial case and the changes the user declined.
Each step asks, in this order:

1. a required field the case does not give (the KB's ``question/2`` words,
   the field's vocabulary as options);
2. an optional field the case does not give, when the solver finds that its
   value can change the outcome (decision, or whether any documentation
   can still make the case approved); otherwise it is never asked;
3. the requirement that appears in the most of the remaining smallest
   options of :func:`~kineret_asp.explain.missing.missing` (ties in the order the
   options are listed), its alternatives as options, with "none of these".

Every option is a list of case changes: an answer becomes case facts by
applying them. When the case is approved, or no remaining option can make
it so, the dialogue is decided and says so. :func:`next_step` is the plain
JSON form; :func:`kineret_asp.interop.dtr.next_question` plays it as the Da
Vinci DTR adaptive form (``$next-question``), every answer checked against
the options offered.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from ..cases.changes import Change, apply_changes, change_list, settle
from ..cases.load import load
from ..errors import CaseError
from ..knowledge.schema import INTEGER, LIST

if TYPE_CHECKING:  # pragma: no cover
    from ..decisions.decision import Decision
    from ..explain.missing import Missing
    from ..knowledge.base import KnowledgeBase

QUESTION, DECIDED = "question", "decided"
NONE_CODE = "none"


@dataclass(frozen=True)
class Choice:
    """One answer option: its words and the case changes it makes."""

    code: str
    text: str
    changes: tuple[Change, ...]

    def to_dict(self) -> dict:
        return {"code": self.code, "text": self.text, "changes": [c.to_dict() for c in self.changes]}


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    options: tuple[Choice, ...]
    declinable: bool  # whether "none of these" is an answer
    field: Optional[str] = None

    def to_dict(self, none_text: str) -> dict:
        out = {"id": self.id, "text": self.text, "options": [o.to_dict() for o in self.options]}
        if self.declinable:
            out["none"] = {"code": NONE_CODE, "text": none_text, "declines": [c.to_dict() for o in self.options for c in o.changes]}
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class Step:
    status: str
    case: dict
    question: Optional[Question] = None
    decision: Optional["Decision"] = None

    def to_dict(self, kb: "KnowledgeBase") -> dict:
        out: dict[str, Any] = {"status": self.status, "case": self.case}
        if self.question is not None:
            out["question"] = self.question.to_dict(kb.vocabulary.word("q_none"))
        if self.decision is not None:
            out["decision"] = self.decision.to_dict()
        return out


def _code(changes: Sequence[Change]) -> str:
    return json.dumps([c.to_dict() for c in changes], sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def change_words(change: Change, kb: "KnowledgeBase") -> str:
    """A change in the KB's words: a key's label, an entry through entry_text/2."""
    from ..templates import optional_fill

    schema = kb.schema
    f = schema.by_name.get(change.path.split("[")[0])
    value = change.value
    if f is None:
        return change.describe()
    if isinstance(value, Mapping):
        templates = {str(a): str(b) for a, b in kb.facts("entry_text", 2)}
        labels = {e.name: schema.value_label(e.kind, value[e.name]) for e in f.entry_fields if value.get(e.name) is not None}
        template = templates.get(f.name)
        text = optional_fill(template, labels) if template else ", ".join(labels.values())
        extra = [labels[e.name] for e in f.entry_fields if e.name in labels and "{" + e.name + "}" not in (template or "") and e.kind.name == INTEGER]
        return text + (f" ({', '.join(extra)})" if extra else "")
    return schema.value_label(f.kind, value) if value is not None else change.describe()


def _outcome(data: dict, kb: "KnowledgeBase") -> tuple:
    from ..explain.missing import missing

    result = missing(load(data, kb, shown="<questionnaire>").case, kb)
    return (result.decision.decision, result.status)


def _remaining(result: "Missing", declined: set[str]) -> list[list[tuple[Any, list[Change]]]]:
    """The options left when declined changes are taken out: each a list of (requirement, alternatives)."""
    out = []
    for option in result.options:
        kept = []
        for req in option.requirements:
            alts = [c for c in req.alternatives if _code([c]) not in declined]
            if not alts:
                break
            kept.append((req, alts))
        else:
            out.append(kept)
    return out


def _field_question(f: Any, kb: "KnowledgeBase") -> Question:
    vocab = kb.vocabulary
    kind = f.kind.item if f.kind.item is not None else f.kind
    keys = vocab.keys.get(kind.vocabulary or "", {})
    op = "add" if f.kind.name == LIST else "set"
    text = {str(a): str(b) for a, b in kb.facts("question", 2)}.get(f.name, f.description)
    options = tuple(Choice(k, label, (Change(op, f.name, k),)) for k, label in keys.items())
    return Question(f.name, text, options, False, f.name)


def next_step(data: Mapping[str, Any], declined: Sequence[Any] = (), kb: Any = None) -> Step:
    """The next question for a partial case, or the decision when no question can change it."""
    from ..api import evaluate
    from ..explain.missing import missing
    from ..knowledge.base import resolve_kb

    knowledge = resolve_kb(kb)
    schema = knowledge.schema
    w = knowledge.vocabulary.word
    if not isinstance(data, Mapping):
        raise CaseError("<questionnaire>", "case", "expected a case object (it may leave out any field)")
    state = dict(copy.deepcopy(data))
    declined_codes = {_code([c]) for c in change_list(list(declined))}
    for f in schema.fields:
        if f.presence == "required" and state.get(f.name) is None and f.kind.vocabulary:
            return Step(QUESTION, state, _field_question(f, knowledge))
    case = load(state, knowledge, shown="<questionnaire>").case
    decision = evaluate(case, knowledge)
    if decision.approved:
        return Step(DECIDED, case.to_dict(), decision=decision)
    asked = {str(a) for a, _ in knowledge.facts("question", 2)}
    for f in schema.fields:
        if f.name in asked and f.presence == "optional" and state.get(f.name) is None and f.kind.vocabulary:
            question = _field_question(f, knowledge)
            outcomes = {_outcome(state, knowledge)}
            for o in question.options:
                outcomes.add(_outcome({**state, f.name: o.changes[0].value}, knowledge))
                if len(outcomes) > 1:
                    return Step(QUESTION, case.to_dict(), question)
    result = missing(case, knowledge)
    options = _remaining(result, declined_codes)
    if not options:
        return Step(DECIDED, case.to_dict(), decision=decision)
    counts: dict[str, int] = {}
    first: dict[str, tuple[Any, list[Change]]] = {}
    for option in options:
        for req, alts in option:
            key = _code(alts)
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, (req, alts))
    best = max(first, key=lambda k: (counts[k], -list(first).index(k)))
    req, alts = first[best]
    fields = {c.path for c in alts}
    if req.question and len(fields) == 1 and next(iter(fields)) in schema.by_name:
        # a fact of the case to state (the plan type), not documentation: ask for the field itself
        asked_field = _field_question(schema.by_name[next(iter(fields))], knowledge)
        allowed = {c.value for c in alts}
        options = tuple(o for o in asked_field.options if o.changes[0].value in allowed)
        return Step(QUESTION, case.to_dict(), Question(asked_field.field, asked_field.text, options, False, asked_field.field))
    choices = tuple(Choice(_code([c]), change_words(c, knowledge), (c,)) for c in alts)
    if len(choices) == 1:
        text = w("q_documentation", text=req.text)
        choices = (Choice(choices[0].code, w("q_yes"), choices[0].changes),)
    else:
        text = w("q_choose", text=req.text)
    return Step(QUESTION, case.to_dict(), Question(f"{req.kind}:{best}", text, choices, True))


def answer_step(data: Mapping[str, Any], changes: Sequence[Any], kb: Any = None) -> dict:
    """A partial case with an answer's changes applied (validated when complete enough)."""
    from ..knowledge.base import resolve_kb

    knowledge = resolve_kb(kb)
    parsed = change_list(list(changes))
    state = dict(copy.deepcopy(data))
    required = [f.name for f in knowledge.schema.fields if f.presence == "required"]
    if any(state.get(n) is None for n in required):
        for c in parsed:
            if c.op == "set" and c.path in required:
                state[c.path] = c.value
                settle(state, c.path, knowledge.schema)
        parsed = [c for c in parsed if not (c.op == "set" and c.path in required)]
    if not parsed:
        return state
    if any(state.get(n) is None for n in required):
        raise CaseError("<questionnaire>", required[0], "answer this question first")
    return apply_changes(load(state, knowledge, shown="<questionnaire>").case, parsed, knowledge).to_dict()
