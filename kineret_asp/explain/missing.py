"""What is missing: every smallest set of documentation that makes a case approved.

The question is answered by clingo over the same KB that decides. One
program holds two copies of the case: ``given``, the case as it is, and
``hyp``, the case plus the documentation the solver chooses. The policy
declares what documentation can be chosen (``abducible/1``, next to the
rules each item feeds) and what each item changes in the case
(``documents/2``, ``documents_entry/3``); :mod:`kineret_asp.engine.program`
builds the hypothetical copy's inputs from those declarations and the case
schema. The solver enumerates the subset-minimal choices for which ``hyp``
is approved, using domain heuristics (``--enum-mode=domRec`` with the
chosen items preferred false), so no combination is tried in Python.

Two reductions keep the answer readable, both exact:

- keys the KB cannot tell apart and groups together (the brands of one
  product) are chosen through one representative and offered together
  (:mod:`kineret_asp.engine.symmetry`);
- options that differ in one item of the same kind are shown as one option
  with an any-of group. ``Option.expanded()`` gives back every single
  option, each a list of case changes that :func:`what_if` can apply.

When no documentation can help, the blockers are found by the solver too:
the reasons that hold whatever is added, and the unmet criteria that no
addition can meet.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import clingo

from ..api import CaseLike, KbLike, decide
from ..asp.solving import ground_program, models
from ..asp.symbols import Const, SymbolDecoder, Value, term_text
from ..cases.case import Case
from ..cases.changes import Change
from ..cases.load import load
from ..decisions.decision import APPROVED, Decision
from ..decisions.words import entry_templates, entry_words
from ..engine.program import GIVEN, HYP, compiled
from ..engine.symmetry import group_classes, nonrepresentatives
from ..errors import KineretError, SolveTimeout
from ..knowledge.base import KnowledgeBase
from ..knowledge.schema import DECIMAL, CaseSchema, Kind
from ..templates import PLACEHOLDER, fill, optional_fill

MAX_MODELS = 50_000


class AbductionLimit(KineretError):
    """The search found more minimal options than it is allowed to list."""


def item_kind(item: Value) -> str:
    return item[0] if isinstance(item, tuple) else str(item)


@dataclass(frozen=True)
class Requirement:
    """One piece of documentation to add (or a question to answer): any one of its alternatives will do.

    ``parts`` are its alternatives in words, each a whole phrase (``text``
    joins them); a question (``question/1`` in the KB) asks for a fact of
    the case to be stated, not for documentation to be obtained.
    """

    kind: str
    items: tuple[Value, ...]
    text: str
    alternatives: tuple[Change, ...]
    parts: tuple[str, ...] = ()
    question: bool = False

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "parts": list(self.parts or (self.text,)), "question": self.question, "any_of": [c.to_dict() for c in self.alternatives]}


@dataclass(frozen=True)
class Option:
    """A smallest set of documentation that makes the case approved."""

    requirements: tuple[Requirement, ...]
    joiner: str = "; and "

    @property
    def size(self) -> int:
        return len(self.requirements)

    @property
    def questions(self) -> int:
        return sum(r.question for r in self.requirements)

    @property
    def text(self) -> str:
        return self.joiner.join(r.text for r in self.requirements)

    def expanded(self) -> Iterator[list[Change]]:
        """Every single option this one stands for, as lists of case changes."""
        for combo in itertools.product(*(r.alternatives for r in self.requirements)):
            yield list(combo)

    def count(self) -> int:
        n = 1
        for r in self.requirements:
            n *= len(r.items)
        return n

    def first(self) -> list[Change]:
        """One concrete choice: the first alternative of every requirement."""
        return [r.alternatives[0] for r in self.requirements]

    def to_dict(self) -> dict:
        return {"size": self.size, "questions": self.questions, "text": self.text, "count": self.count(), "requirements": [r.to_dict() for r in self.requirements]}


@dataclass(frozen=True)
class Blocker:
    """Why no documentation can make a case approved."""

    id: str
    text: str

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text}


@dataclass(frozen=True)
class Missing:
    """The answer to "what is missing for approval?"."""

    case: Case
    decision: Decision
    status: str  # "approved" | "options" | "no_option"
    options: tuple[Option, ...] = ()
    blockers: tuple[Blocker, ...] = ()

    def expanded(self) -> list[list[Change]]:
        return [combo for o in self.options for combo in o.expanded()]

    def to_dict(self) -> dict:
        return {
            "id": self.case.id,
            "decision": self.decision.decision,
            "status": self.status,
            "options": [o.to_dict() for o in self.options],
            "blockers": [b.to_dict() for b in self.blockers],
            **({"provenance": self.decision.provenance.to_dict()} if self.decision.provenance is not None else {}),
        }


# --- the solver --------------------------------------------------------------------


def _ground(case: Case, kb: KnowledgeBase, options: Sequence[str], extra: Sequence[str] = ()):
    """The two-copy program grounded with the case's facts as the given copy."""
    program = compiled(kb)
    facts = [term_text((atom[0], Const(GIVEN), *atom[1:])) + "." for atom in case.atoms()]
    facts += [f"nonrepresentative__({term_text(Const(k))})." for k in sorted(nonrepresentatives(kb))]
    return ground_program(kb, [program.abduction_text, "\n".join(facts), *extra], options, "the abduction program")


@dataclass(frozen=True)
class Documentation:
    """What each abducible item of a case changes in it, read from the grounded program."""

    changes: dict[Value, tuple]  # item -> its documents/2 change term
    entries: dict[Value, dict[str, Value]]  # item -> entry field -> value

    @classmethod
    def read(cls, control) -> "Documentation":
        decode = SymbolDecoder()
        changes: dict[Value, tuple] = {}
        entries: dict[Value, dict[str, Value]] = {}
        given = clingo.Function(GIVEN)
        for atom in control.symbolic_atoms.by_signature("documents", 3):
            args = atom.symbol.arguments
            if args[0] != given:  # the hypothetical copy declares the same documentation
                continue
            item, change = (decode(a) for a in args[1:])
            changes[item] = change if isinstance(change, tuple) else (str(change),)
        for atom in control.symbolic_atoms.by_signature("documents_entry", 4):
            args = atom.symbol.arguments
            if args[0] != given:
                continue
            item, sub, value = (decode(a) for a in args[1:])
            entries.setdefault(item, {})[str(sub)] = value
        return cls(changes, entries)


def minimal_choices(case: Case, kb: KnowledgeBase, limit: int = MAX_MODELS, time_limit: float = 60.0) -> tuple[list[frozenset], Documentation]:
    """Every subset-minimal set of abducible items that makes ``case`` approved."""
    control = _ground(
        case,
        kb,
        ["--heuristic=Domain", "--enum-mode=domRec", "--models=0"],
        [
            f":- not decision({HYP}, {APPROVED}).",
            f"#heuristic abduce(A) : abducible({GIVEN}, A). [1, false]",
        ],
    )
    documentation = Documentation.read(control)
    decode = SymbolDecoder()
    found: list[frozenset] = []
    try:
        for model in models(control, time_limit):
            found.append(frozenset(decode(s)[1] for s in model.symbols(shown=True)))
            if len(found) > limit:
                raise AbductionLimit(f"more than {limit} minimal options; the case is too far from approval to list them")
    except SolveTimeout:
        raise AbductionLimit(f"the search for missing documentation took over {time_limit:g} s") from None
    return found, documentation


def blockers(case: Case, decision: Decision, kb: KnowledgeBase, time_limit: float = 60.0) -> list[Blocker]:
    """Why nothing helps: reasons that hold whatever is added, unmet criteria no addition meets.

    A criterion is reported when no choice of documentation meets it and no
    criterion below it that could apply is such a blocker itself, so the
    most specific cause is named.
    """
    control = _ground(case, kb, ["--enum-mode=brave", "--models=0"], ["#show.", f"#show met(hyp, C) : met({HYP}, C).", f"#show reason(hyp, R) : reason({HYP}, R)."])
    decode = SymbolDecoder()
    meetable: set[str] = set()
    for model in models(control, time_limit):
        meetable = {str(decode(s)[2]) for s in model.symbols(shown=True) if s.name == "met"}
    control.configuration.solve.enum_mode = "cautious"
    always: Optional[set[str]] = None
    for model in models(control, time_limit):
        always = {str(decode(s)[2]) for s in model.symbols(shown=True) if s.name == "reason"}
    vocab = kb.vocabulary
    if always:
        reasons = [r for r in decision.reasons if r.id in always]
        return [Blocker(r.id, r.text) for r in reasons]
    stuck = [cid for cid in decision.unmet if cid not in meetable]
    notes = {n.id: n.text for n in decision.notes}
    out = []
    for cid in stuck:
        below = [k for k in stuck if k != cid and _is_below(k, cid, vocab.criteria)]
        if not below:
            out.append(Blocker(cid, notes.get(cid, vocab.criteria[cid].text)))
    return out


def _is_below(cid: str, ancestor: str, criteria: dict) -> bool:
    parent = criteria[cid].parent if cid in criteria else None
    while parent is not None:
        if parent == ancestor:
            return True
        parent = criteria[parent].parent if parent in criteria else None
    return False


# --- changes and words ---------------------------------------------------------------


class Words:
    """Changes and words for the documentation items of one case, from the KB's declarations."""

    def __init__(self, kb: KnowledgeBase, case: Case, documentation: Documentation):
        self.kb = kb
        self.schema: CaseSchema = kb.schema
        self.vocab = kb.vocabulary
        self.case = case
        self.doc = documentation
        self.templates = {str(k): (str(s), str(c), str(sub)) for k, s, c, sub in kb.facts("documentation_text", 4)}
        self.kind_rank = {k: i for i, k in enumerate(self.templates)}
        self.entry_texts = entry_templates(kb)
        self.value_words = {(str(v), str(k)): str(t) for v, k, t in kb.facts("documentation_value", 3)}
        self.questions = {str(k) for (k,) in kb.facts("question", 1)}
        self._key_rank: dict[str, tuple] = {}  # a key's place: its vocabulary's order (the first vocabulary holding it)
        for keys in self.vocab.keys.values():
            for i, key in enumerate(keys):
                self._key_rank.setdefault(key, (0, i, ""))
        self._item_keys: dict[int, tuple] = {}  # id(item) -> (item, its sort key): grouping sorts the same items again and again

    # the change an item makes, in the case format
    def change(self, item: Value) -> Change:
        term = self.doc.changes.get(item)
        if term is None:
            raise KineretError(f"the KB declares documentation {term_text(item)} without saying what it changes in the case (documents/2)")
        op, field, *rest = term
        if op == "add" and not rest:
            values = self.doc.entries.get(item, {})
            return Change.add(str(field), {k: _plain(v) for k, v in self._entry_order(str(field), values)})
        if op == "set" and len(rest) == 3:
            n, sub, value = rest
            return Change.set(f"{field}[{n}].{sub}", _plain(_from_term(self._kind_of(str(field), str(sub)), value)))
        if op in ("add", "set", "remove") and len(rest) == 1:
            return Change(op, str(field), _plain(_from_term(self._kind_of(str(field)), rest[0])))
        raise KineretError(f"documents/2 of {term_text(item)} names a change this program cannot make: {term_text(term)}")

    def _entry_order(self, field: str, values: dict[str, Value]) -> list[tuple[str, Value]]:
        f = self.schema.by_name.get(field)
        order = [e.name for e in f.entry_fields] if f is not None else list(values)
        return [(k, values[k]) for k in order if k in values]

    def _kind_of(self, field: str, sub: Optional[str] = None) -> Optional[Kind]:
        f = self.schema.by_name.get(field)
        if f is None:
            return None
        if sub is not None:
            e = f.entry_field(sub)
            return e.kind if e is not None else None
        return f.kind.item if f.kind.item is not None else f.kind

    def values(self, item: Value) -> dict[str, tuple[Any, str]]:
        """The placeholders of an item's words: raw value and words for each."""
        term = self.doc.changes.get(item, ())
        if not term:
            return {}
        op, field, *rest = term
        field = str(field)
        out: dict[str, tuple[Any, str]] = {}
        if op == "add" and not rest:
            for sub, value in self.doc.entries.get(item, {}).items():
                out[sub] = (value, self.label(self._kind_of(field, sub), value))
        elif len(rest) == 3:
            n, sub, value = rest
            out["value"] = (value, self.label(self._kind_of(field, str(sub)), value))
            out["index"] = (n, str(n))
            out["entry"] = (n, self.entry_words(field, n))
        elif rest:
            out["value"] = (rest[0], self.label(self._kind_of(field), rest[0]))
        return out

    def label(self, kind: Optional[Kind], value: Value) -> str:
        if kind is None:
            return str(value)
        value = _from_term(kind, value)
        words = self.value_words.get((kind.vocabulary or "", str(value)))
        return words if words is not None else self.schema.value_label(kind, _plain(value))

    def entry_words(self, field: str, n: Value) -> str:
        entries = self.case.get(field) or ()
        if not isinstance(n, int) or n >= len(entries) or field not in self.entry_texts:
            return f"{field}[{n}]"
        return entry_words(self.schema, self.entry_texts, self.schema.by_name[field], entries[n], self.schema.value_label)

    def order(self, vocabulary_value: tuple[Any, str], kind_hint: Optional[str] = None) -> tuple:
        raw, _ = vocabulary_value
        return self._key_rank.get(str(raw)) or (1, 0, repr(raw))

    def item_key(self, item: Value) -> tuple:
        """Items in the KB's own order: kinds as their words are declared, keys as their vocabulary."""
        known = self._item_keys.get(id(item))
        if known is not None and known[0] is item:
            return known[1]
        key = self._item_key(item)
        self._item_keys[id(item)] = (item, key)
        return key

    def _item_key(self, item: Value) -> tuple:
        kind = item_kind(item)
        values = self.values(item)
        _, choice, subject = self.templates.get(kind, ("", "", ""))
        names = PLACEHOLDER.findall(subject) + PLACEHOLDER.findall(choice)
        return (self.kind_rank.get(kind, len(self.kind_rank)), tuple(self.order(values[n]) for n in names if n in values), repr(item))

    # grouped words
    def parts(self, kind: str, items: Sequence[Value]) -> list[str]:
        """A requirement's alternatives in words: one phrase per set of choices, its subjects listed."""
        sentence, choice, subject = self.templates.get(kind, ("{subject}", "", "{value}"))
        w = self.vocab.word
        by_subject: dict[str, list[str]] = {}
        subject_raw: dict[str, Any] = {}
        order: dict[str, tuple] = {}
        for item in sorted(items, key=self.item_key):
            values = self.values(item)
            words = {k: v[1] for k, v in values.items()}
            s = optional_fill(subject, words)
            c = optional_fill(choice, words)
            names = PLACEHOLDER.findall(subject)
            subject_raw[s] = values[names[0]][0] if len(names) == 1 and subject.strip() == f"{{{names[0]}}}" and names[0] in values else None
            if c not in by_subject.setdefault(s, []):
                by_subject[s].append(c)
            order.setdefault(s, self.item_key(item))
        groups: dict[tuple[str, ...], list[str]] = {}
        for s, choices in by_subject.items():
            groups.setdefault(tuple(choices), []).append(s)
        parts = []
        for choices, subjects in sorted(groups.items(), key=lambda kv: min(order[s] for s in kv[1])):
            names = self.named(subjects, subject_raw)
            subject_text = names[0] if len(names) == 1 else w("one_of", items=w("list_separator").join(names))
            choice_text = _or_join(list(choices), w("list_separator"), w("last_or"))
            parts.append(fill(sentence, {"subject": subject_text, "choice": choice_text}))
        return parts

    def named(self, subjects: list[str], raw: dict[str, Any]) -> list[str]:
        """Subject words, a whole key group named once by the group's name."""
        keys = {raw[s]: s for s in subjects if raw.get(s) is not None}
        out: list[str] = []
        done: set[str] = set()
        for s in subjects:
            key = raw.get(s)
            if s in done:
                continue
            if key is not None:
                for vocabulary, groups in self.vocab.key_groups.items():
                    for group, members in groups.items():
                        if str(key) in members and len(members) > 1 and all(m in map(str, keys) for m in members):
                            out.append(self.vocab.group_names.get(vocabulary, {}).get(group, group))
                            done.update(keys[k] for k in keys if str(k) in members)
                            break
                    if s in done:
                        break
            if s not in done:
                out.append(s)
                done.add(s)
        return out


def _or_join(words: list[str], separator: str, last: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return separator.join(words[:-1]) + last + words[-1]


def _from_term(kind: Optional[Kind], value: Value) -> Value:
    """A term of the rules as the case's value: a decimal's whole number (times 10**places) as the number it stands for."""
    if kind is not None and kind.name == DECIMAL and isinstance(value, int) and not isinstance(value, bool):
        return kind.unscaled(value)
    return value


def _plain(value: Value) -> Any:
    if isinstance(value, Const):
        return {"true": True, "false": False}.get(str(value), str(value))
    return value


def _substitute(value: Value, old: str, new: str) -> Value:
    if isinstance(value, tuple):
        return (value[0], *[_substitute(v, old, new) for v in value[1:]])
    if isinstance(value, Const) and value == old:
        return Const(new)
    return value


def canonical(value: Any, known: Optional[dict] = None) -> str:
    """A text for a value that is the same in every process: the items of a set sorted.

    ``repr`` of a frozenset lists its items in hash order, which for strings
    changes from one process to the next (PYTHONHASHSEED); ordering by it made
    the grouping of options, and so the output, differ between runs. ``known``
    keeps the texts already made, by object identity (with the object, so its
    id is not reused): the merging of options asks for the same groups again
    and again. Not by equality, which would mix up a constant and the equal
    string, whose texts differ.
    """
    if not isinstance(value, (set, frozenset, tuple)):
        return repr(value)
    if known is None:
        known = {}
    seen = known.get(id(value))
    if seen is not None:
        return seen[1]
    if isinstance(value, tuple):
        text = "(" + ", ".join(canonical(v, known) for v in value) + ")"
    else:
        text = "{" + ", ".join(sorted(canonical(v, known) for v in value)) + "}"
    known[id(value)] = (value, text)
    return text


def group_options(choices: Sequence[frozenset], kb: KnowledgeBase, case: Case, documentation: Documentation) -> list[Option]:
    """Expand representatives, merge options that differ in one item of a kind, and label."""
    classes = group_classes(kb)
    doc = documentation

    def expand(item: Value) -> frozenset:
        # only what is added can be any member of a class: a removal names the case's own key
        change = doc.changes.get(item, ())
        if not change or change[0] != "add":
            return frozenset([item])
        keys = [v for v in doc.entries.get(item, {}).values()] + list(change[2:])
        for key in keys:
            members = classes.get(str(key)) if isinstance(key, Const) else None
            if members and len(members) > 1:
                out = set()
                for m in members:
                    twin = _substitute(item, str(key), m)
                    doc.changes.setdefault(twin, _substitute(doc.changes[item], str(key), m))  # type: ignore[arg-type]
                    if item in doc.entries:
                        doc.entries.setdefault(twin, {k: _substitute(v, str(key), m) for k, v in doc.entries[item].items()})
                    out.add(twin)
                return frozenset(out)
        return frozenset([item])

    # an option is a frozenset of groups; a group is (kind, frozenset of items)
    groups: dict[int, tuple] = {}  # id(item) -> (item, its group): the same items recur in thousands of choices

    def group_of(item: Value) -> tuple:
        known = groups.get(id(item))
        if known is None:
            known = groups[id(item)] = (item, (item_kind(item), expand(item)))
        return known[1]

    options = {frozenset(group_of(i) for i in choice) for choice in choices}
    texts: dict = {}
    while True:
        buckets: dict[tuple, list[tuple[frozenset, tuple]]] = {}
        for opt in options:
            for group in opt:
                buckets.setdefault((opt - {group}, group[0]), []).append((opt, group))
        merged: set[frozenset] = set()
        result: set[frozenset] = set()
        # a bucket of one option merges nothing: only the others need an order
        shared = [key for key, members in buckets.items() if len(members) > 1]
        for key in sorted(shared, key=lambda k: (len(k[0]), canonical(k[0], texts), k[1])):
            members = [(o, g) for o, g in buckets[key] if o not in merged]
            if len(members) < 2:
                continue
            rest, kind = key
            union = frozenset().union(*(g[1] for _, g in members))
            result.add(rest | {(kind, union)})
            merged.update(o for o, _ in members)
        if not merged:
            break
        options = result | {o for o in options if o not in merged}
    words = Words(kb, case, doc)
    built = []
    for opt in options:
        requirements = []
        # questions first, then documentation, each in the KB's order
        for kind, items in sorted(opt, key=lambda g: (g[0] not in words.questions, min(words.item_key(i) for i in g[1]))):
            ordered = tuple(sorted(items, key=words.item_key))
            parts = tuple(words.parts(kind, ordered))
            requirements.append(Requirement(kind, ordered, kb.vocabulary.word("or_else").join(parts), tuple(words.change(i) for i in ordered), parts, kind in words.questions))
        built.append(Option(tuple(requirements), kb.vocabulary.word("and_also")))
    built.sort(key=lambda o: (o.size, o.text))
    return built


def missing(case: CaseLike, kb: KbLike = None) -> Missing:
    """Every subset-minimal set of documentation additions that makes the case approved.

    Returns status ``approved`` (nothing is missing), ``options`` (sorted by
    size), or ``no_option`` with the blockers: the reasons that hold
    whatever is added, or the unmet criteria no documentation can meet.
    """
    read = load(case, kb)
    loaded, knowledge = read.case, read.choice.kb
    decision = decide(read)
    if decision.approved:
        return Missing(loaded, decision, "approved")
    choices, documentation = minimal_choices(loaded, knowledge)
    if not choices:
        return Missing(loaded, decision, "no_option", blockers=tuple(blockers(loaded, decision, knowledge)))
    return Missing(loaded, decision, "options", tuple(group_options(choices, knowledge, loaded, documentation)))


def option_counts(option: Option, kb: KnowledgeBase) -> str:
    """How much an option asks for, in the KB's words: "1 question, 2 additions"."""
    w = kb.vocabulary.word
    questions, additions = option.questions, option.size - option.questions
    counts = []
    if questions:
        counts.append(w("count", count=questions, what=w("questions" if questions > 1 else "question")))
    if additions:
        counts.append(w("count", count=additions, what=w("additions" if additions > 1 else "addition")))
    return w("list_separator").join(counts)


def option_lines(option: Option, kb: KnowledgeBase) -> list[tuple[int, str]]:
    """An option as (depth, line): each requirement one line, a requirement's alternatives a list below it."""
    w = kb.vocabulary.word
    out: list[tuple[int, str]] = []
    for r in option.requirements:
        parts = r.parts or (r.text,)
        head = parts[0] if len(parts) == 1 else w("missing_alternatives")
        out.append((0, w("missing_question" if r.question else "missing_requirement", text=head)))
        if len(parts) > 1:
            out.extend((1, w("missing_alternative", text=p)) for p in parts)
    return out


def requirement_lines(decision: Decision, kb: KnowledgeBase) -> list[str]:
    """What the policy requires for the case (its criteria tree, each row met, unmet or not needed), then a blank line.

    A row under a met criterion was not needed (its parent is met without
    it); the rows left unmet are what the options settle.
    """
    if not decision.criteria:
        return []
    v = kb.vocabulary
    w = v.word
    lines = [w("missing_requires", policy=v.policy_id)]
    needs = dict(decision.needs)
    own = {str(c): str(t) for c, t in kb.facts("needs_text", 2)}

    def show(node: Any, depth: int, needed: bool) -> None:
        status = w("status_met" if node.met else "status_unmet" if needed else "status_not_needed")
        need = needs.get(node.id)
        if need is not None and 2 <= need < len(v.children.get(node.id, ())) and node.children:
            documented = sum(c.met for c in node.children)  # a TWO-of says how many of its rows are documented
            count = fill(own[node.id], {"count": documented, "need": need}) if node.id in own else w("needs_count", count=documented, need=need)
            lines.append("  " * depth + w("missing_requires_count_row", id=node.id, text=node.text, status=status, count=count))
        else:
            lines.append("  " * depth + w("missing_requires_row", id=node.id, text=node.text, status=status))
        for child in node.children:
            show(child, depth + 1, needed and not node.met)

    for root in decision.criteria:
        show(root, 1, True)
    return lines + [""]


def render_missing(result: Missing, kb: KnowledgeBase) -> str:
    w = kb.vocabulary.word
    d = result.decision
    lines = [w("missing_case", id=result.case.id or w("no_id"), decision=kb.vocabulary.decision_texts.get(d.decision, d.decision).lower())]
    if result.status == "approved":
        lines.append(w("missing_approved"))
        return "\n".join(lines) + "\n"
    lines.extend(requirement_lines(d, kb))
    if result.status == "no_option":
        lines.append(w("missing_none"))
        for b in result.blockers:
            lines.append(f"  {b.id}  {b.text}")
    else:
        lines.append(kb.vocabulary.counted("missing_options", len(result.options), count=len(result.options)))
        for n, opt in enumerate(result.options, 1):
            lines.append("  " + w("missing_option", n=n, counts=option_counts(opt, kb)))
            lines.extend("     " + "  " * depth + text for depth, text in option_lines(opt, kb))
    return "\n".join(lines) + "\n"


def item_changes(case: CaseLike, kb: KbLike = None) -> dict[Value, Change]:
    """Every documentation item the KB lets a prescriber add to this case, with its case change (every key, no grouping)."""
    read = load(case, kb)
    loaded, knowledge = read.case, read.choice.kb
    # the items of the case as given: true in its one answer (grounding alone may leave them undecided)
    control = _ground(loaded, knowledge, [], ["#show.", ":- abduce(_).", f"#show item__(I) : abducible({GIVEN}, I)."])
    documentation = Documentation.read(control)
    words = Words(knowledge, loaded, documentation)
    decode = SymbolDecoder()
    items: list[Value] = []
    for model in models(control, 60.0):
        items = [decode(s.arguments[0]) for s in model.symbols(shown=True)]
        break
    return {item: words.change(item) for item in sorted(items, key=repr)}


def abducible_items(case: CaseLike, kb: KbLike = None) -> list[Value]:
    """The documentation the KB lets a prescriber add to this case (every key, no grouping)."""
    return list(item_changes(case, kb))
