"""Which version of which policy decides a case, and the provenance of a decision.

A KB tree holds every version of every policy side by side
(:class:`~kineret_asp.knowledge.base.KbTree`). A payer decides a request by the
version in force on its date of service, and re-adjudicates an old request
by the version it was made under; so a case is matched to a version before
it is validated, because each version declares its own case schema:

- a case that names a policy (the field whose role is ``policy_selector``)
  is decided by that policy; in a tree of several policies, a case that
  names none is decided by the one whose claims (``claim/3``) cover it:
  the drug it asks for (the field whose role is ``requested_drug``: a key,
  a name or a code of the KB's drug vocabulary) first, then its other
  fields; a case that names no drug is decided only where one policy alone
  could claim it, and refused naming the candidate drugs and policies
  otherwise; a drug no policy (or not the named one) claims is refused;
- a case with a date of service (the field whose role is
  ``date_of_service``) is decided by the version in force on that date; a
  date before every version, or in a gap between two, is an error naming
  the versions, never a silent fallback;
- an example case kept in a version's ``cases/`` folder, without a date,
  is decided by that version when ``kineret-asp test`` runs it (anywhere
  else, where a file is kept never changes its decision);
- any other case is decided by the latest version, and its decision says so.

Nothing here reads today's date. The fields are found through the
framework's roles, never by name. Passing a :class:`KnowledgeBase` (or a
version folder) instead of a tree keeps using that version for every case.

Every decision carries a :class:`Provenance`: which rules produced it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import CaseError, did_you_mean
from ..knowledge.base import KbTree, KnowledgeBase, load_kb, load_tree
from ..knowledge.layout import FRAMEWORK, default_kb_path, kb_shown, tree_digest, tree_root
from ..knowledge.schema import DATE_OF_SERVICE, DATE_PATTERN, MAX_NAME_TEXT, POLICY_SELECTOR, REQUESTED_DRUG
from .case import Case
from .validation import Problems, validate, validator

# how a version was chosen (the provenance's chosen_by)
BY_DATE, BY_FOLDER, LATEST, GIVEN = "date_of_service", "folder", "latest", "given"
# how a policy was chosen (the provenance's policy_chosen_by): the only policy of the tree, the one
# the case names, the one whose claim covers it, the only one claiming the drug it asks for, the
# only one whose case format accepts it; BY_FOLDER and GIVEN as above
ONLY_POLICY, NAMED, BY_CLAIM, BY_DRUG, BY_FORMAT = "only_policy", "named", "claim", "drug", "case_format"

KbLike = Union[KnowledgeBase, "Chooser", Path, str, None]


@dataclass(frozen=True)
class Provenance:
    """Which rules produced a decision: enough for an auditor to find them again.

    ``kb`` is the tree's folder, ``folder`` the version's folder within it;
    the hashes cover the names and contents of the version's rule files and
    of the framework's.
    """

    policy: str
    version: str  # the version's effective-from date
    effective_to: Optional[str]
    folder: str
    kb: str
    rules_sha256: str
    framework_sha256: str
    package_version: str
    chosen_by: str  # date_of_service | folder | latest | given
    policy_chosen_by: str = GIVEN  # only_policy | named | claim | drug | case_format | folder | given
    claim: Optional[tuple[str, str, str]] = None  # the claim/3 (drug, field, value) that chose the policy

    def to_dict(self) -> dict:
        return {
            "policy": self.policy,
            "version": self.version,
            "effective_to": self.effective_to,
            "folder": self.folder,
            "kb": self.kb,
            "rules_sha256": self.rules_sha256,
            "framework_sha256": self.framework_sha256,
            "package_version": self.package_version,
            "chosen_by": self.chosen_by,
            "policy_chosen_by": self.policy_chosen_by,
            "claim": None if self.claim is None else dict(zip(("drug", "field", "value"), self.claim)),
        }

    def served(self) -> "Provenance":
        """This provenance as the HTTP service gives it: the KB named by its folder's name (:func:`served_kb`)."""
        return replace(self, kb=served_kb(self.kb))


def served_kb(kb: str) -> str:
    """How an answer over HTTP names the KB folder: by its own name, never this machine's path to it."""
    return os.path.basename(str(kb).rstrip("/" + os.sep)) or str(kb)


def provenance(kb: KnowledgeBase, chosen_by: "str | Route" = GIVEN) -> Provenance:
    """The provenance of the decisions a version makes (built once per version and way of choosing).

    ``chosen_by`` is how the version was chosen, or a :class:`Route` (how
    the version and the policy were chosen, and the claim that chose it).
    """
    route = chosen_by if isinstance(chosen_by, Route) else Route(chosen_by)

    def make() -> Provenance:
        from .. import __version__

        ident = kb.identity
        return Provenance(
            ident.policy, ident.effective_from, ident.effective_to, kb.folder, kb_shown(kb.root), kb.rules_sha256, kb.framework_sha256, __version__, route.how, route.policy_how, route.claim
        )

    return kb.derived(f"provenance:{route.how}:{route.policy_how}:{route.claim}", make)


@dataclass(frozen=True)
class Route:
    """How a case reached its version: how the version was chosen, how the policy was, and the claim that chose it."""

    how: str
    policy_how: str = GIVEN
    claim: Optional[tuple[str, str, str]] = None


@dataclass(frozen=True)
class Choice:
    """The version that decides a case, and how it was chosen (the version, the policy, the claim)."""

    kb: KnowledgeBase
    how: str
    policy_how: str = GIVEN
    claim: Optional[tuple[str, str, str]] = None
    drug: Optional[str] = None  # the key of the drug the case asks for, as this version reads it

    @cached_property
    def route(self) -> Route:
        """How the case reached this version (one object for every case of this choice)."""
        return Route(self.how, self.policy_how, self.claim)

    @property
    def provenance(self) -> Provenance:
        return provenance(self.kb, self.route)

    def routed(self, policy_how: str, claim: Optional[tuple[str, str, str]] = None, drug: Optional[str] = None) -> "Choice":
        return Choice(self.kb, self.how, policy_how, claim, drug if drug is not None else (claim[0] if claim else None))


def _values(data: Any) -> Mapping[str, Any]:
    """The fields of a case as given (a dict, or a Case's fields), before validation."""
    if isinstance(data, Case):
        return dict(data.fields())
    return data if isinstance(data, Mapping) else {}


class Chooser:
    """Finds the version that decides each case: a fixed version, or by date in a tree."""

    def __init__(self, tree: Optional[KbTree] = None, fixed: Optional[KnowledgeBase] = None):
        if (tree is None) == (fixed is None):
            raise ValueError("a Chooser needs a tree or a fixed version")
        self.tree = tree
        self.fixed = fixed

    @classmethod
    def of(cls, kb: KbLike = None) -> "Chooser":
        """A KnowledgeBase or a version folder: that version; a tree's folder (or None, the packaged KB): by date."""
        if isinstance(kb, Chooser):
            return kb
        if isinstance(kb, KnowledgeBase):
            return cls(fixed=kb)
        folder = Path(kb) if kb is not None else default_kb_path()
        tree = load_tree(folder)
        _, version = tree_root(folder.resolve())
        if version is not None:
            return cls(fixed=load_kb(version))
        return cls(tree=tree)

    def spec(self) -> str:
        """The folder that makes this chooser again in another process (:meth:`of`)."""
        return str(self.fixed.path if self.fixed is not None else self.tree.root)  # type: ignore[union-attr]

    @property
    def root(self) -> Path:
        """The KB tree's folder."""
        return self.fixed.root if self.fixed is not None else self.tree.root  # type: ignore[union-attr]

    def versions(self) -> tuple[KnowledgeBase, ...]:
        """The versions this chooser may pick."""
        return (self.fixed,) if self.fixed is not None else self.tree.versions  # type: ignore[union-attr]

    def default(self) -> KnowledgeBase:
        """The version that decides a case that says nothing (the latest of the first policy)."""
        if self.fixed is not None:
            return self.fixed
        policies = self.tree.policies  # type: ignore[union-attr]
        return next(iter(policies.values()))[-1]

    def on(self, date: str) -> KnowledgeBase:
        """The version of the first policy in force on ``date`` (a fixed version: itself), for what is asked about a day, not a case:
        the DTR questionnaire of an order written that day. Raises :class:`CaseError` when none is in force."""
        if self.fixed is not None:
            return self.fixed
        policy = next(iter(self.tree.policies))  # type: ignore[union-attr]
        return self._version(policy, date, "<date>", None).kb

    # --- choosing ------------------------------------------------------------------

    @cached_property
    def _fields(self) -> tuple[Optional[str], Optional[str], Optional[str], Any]:
        """The fields that choose (found by the framework's roles, the same in every version), and a schema to check them."""
        schema = self.default().schema
        return schema.role(DATE_OF_SERVICE), schema.role(POLICY_SELECTOR), schema.role(REQUESTED_DRUG), schema

    def choose(self, data: Any, source: str, where: Optional[Path] = None) -> Choice:
        """The version that decides a case given as decoded data (or a Case), from a file at ``where``."""
        values = data if type(data) is dict else _values(data)
        date_field, policy_field, drug_field, schema = self._fields
        asked = values.get(drug_field) if drug_field else None
        if self.fixed is not None:
            if asked is None:
                return self._given
            return self._given.routed(GIVEN, *own_drug(self.fixed, values, asked, source, drug_field or ""))
        tree = self.tree
        assert tree is not None
        raw = values.get(date_field) if date_field else None
        named = values.get(policy_field) if policy_field else None
        plain = named is None and asked is None and where is None and (raw is None or type(raw) is str)
        if plain:  # the common case: memoized by date (a batch repeats its dates)
            hit = self._by_date.get(raw)
            if hit is not None:
                return hit
        policies = tree.policies
        date = self._date(values, date_field, schema, source)
        if named is not None:
            if not isinstance(named, str) or named not in policies:
                known = list(policies)
                noun = schema.noun(schema.by_name[policy_field].kind.vocabulary or "")  # type: ignore[index]
                shown = named if isinstance(named, str) else repr(named)
                hint = near(shown, known) if len(shown) <= 60 else ""
                w = self.default().vocabulary.word
                raise CaseError(source, policy_field or "", w("route_unknown_policy", noun=noun.split(" ", 1)[-1], value=repr(shown[:60]), known=", ".join(known), hint=hint))
            candidates = [named]
        else:
            candidates = list(policies)
        if date is None and where is not None:
            held = tree.holding(where)
            if held is not None and held.identity.policy in candidates:
                choice = Choice(held, BY_FOLDER, BY_FOLDER if len(policies) > 1 else ONLY_POLICY)
                return choice if asked is None else choice.routed(choice.policy_how, *own_drug(held, values, asked, source, drug_field or ""))
        if len(candidates) == 1:
            choice = self._version(candidates[0], date, source, date_field).routed(NAMED if named is not None else ONLY_POLICY)
            if asked is not None:
                others = [versions[-1] for pid, versions in policies.items() if pid != candidates[0]]
                choice = choice.routed(choice.policy_how, *own_drug(choice.kb, values, asked, source, drug_field or "", others))
        else:
            choice = self._claimed(candidates, values, date, source, date_field, policy_field, drug_field, asked)
        if plain and len(candidates) == 1:  # with several policies the claims read other fields too
            if len(self._by_date) > 10_000:
                self._by_date.clear()
            self._by_date[raw] = choice
        return choice

    @cached_property
    def _by_date(self) -> dict[Optional[str], Choice]:
        return {}

    @cached_property
    def _given(self) -> Choice:
        return Choice(self.fixed, GIVEN)  # type: ignore[arg-type]

    @staticmethod
    def _date(values: Mapping[str, Any], field: Optional[str], schema: Any, source: str) -> Optional[str]:
        raw = values.get(field) if field else None
        if raw is None:
            return None
        problems = Problems(source)
        date = validator(schema).date(raw, field, problems)
        problems.raise_any()
        return date

    def _version(self, policy: str, date: Optional[str], source: str, date_field: Optional[str]) -> Choice:
        versions = self.tree.policies[policy]  # type: ignore[union-attr]
        if date is None:
            return Choice(versions[-1], LATEST)
        in_force = [kb for kb in versions if kb.identity.in_force(date)]
        if in_force:
            return Choice(in_force[-1], BY_DATE)  # overlapping periods are a `check` error; the later one decides
        raise CaseError(source, date_field or "", no_version_message(policy, date, versions))

    def _claimed(
        self, candidates: list[str], values: Mapping[str, Any], date: Optional[str], source: str, date_field: Optional[str], policy_field: Optional[str], drug_field: Optional[str], asked: Any
    ) -> Choice:
        """In a tree of several policies, the one whose claims cover the case on its date: by the drug it asks for first."""
        policies = self.tree.policies  # type: ignore[union-attr]
        in_force: list[Choice] = []
        for pid in candidates:
            versions = policies[pid]
            if date is None:
                in_force.append(Choice(versions[-1], LATEST))
            else:
                now = [kb for kb in versions if kb.identity.in_force(date)]
                if now:
                    in_force.append(Choice(now[-1], BY_DATE))
        w = self.default().vocabulary.word
        on = " " + w("route_on", date=date) if date else ""
        if not in_force and date is not None:
            raise CaseError(source, date_field or "", w("route_no_policy_in_force", date=date, versions="; ".join(no_version_message(p, date, policies[p]) for p in candidates)))
        offered = "; ".join(w("route_offered", policy=c.kb.identity.policy, drugs=", ".join(drugs_of(c.kb)) or "-") for c in in_force)
        drug_path, policy_path = drug_field or "", policy_field or ""
        if asked is not None:
            keyed = [(c, drug_key(c.kb, asked)) for c in in_force]
            if all(k is None for _, k in keyed):
                for c in in_force:  # a drug no version knows: say what is wrong with it as each version reads it
                    validate(c.kb.schema, dict(values), source)
                raise CaseError(source, drug_path, w("route_no_policy_knows_drug", drug=_shown(asked), on=on, offered=offered))
            mine = [(c, k) for c, k in keyed if k is not None and k in drugs_of(c.kb)]
            if not mine:
                drug = next(k for _, k in keyed if k is not None)
                raise CaseError(source, drug_path, w("route_no_policy_for_drug", drug=drug, on=on, offered=offered))
            claiming = _prevailing([(c, claim) for c, k in mine for claim in [covering(c.kb, values, k)] if claim is not None])
            if len(claiming) == 1:
                return claiming[0][0].routed(BY_CLAIM, claiming[0][1])
            if not claiming and len(mine) == 1:
                return mine[0][0].routed(BY_DRUG, None, mine[0][1])
            names = ", ".join(c.kb.identity.policy for c, _ in (claiming or mine))
            raise CaseError(source, policy_path, w("route_several_for_drug", drug=mine[0][1], on=on, names=names, field=policy_field))
        claiming = _prevailing([(c, claim) for c in in_force for claim in [covering(c.kb, values, None)] if claim is not None])
        if len(claiming) == 1:
            return claiming[0][0].routed(BY_CLAIM, claiming[0][1])
        if claiming:
            names = ", ".join(c.kb.identity.policy for c, _ in claiming)
            if len({claim[0] for _, claim in claiming}) > 1:
                who = "; ".join(w("route_offered", policy=c.kb.identity.policy, drugs=claim[0]) for c, claim in claiming)
                raise CaseError(source, drug_path, w("route_several_could", on=on, who=who, field=drug_field))
            raise CaseError(source, policy_path, w("route_several", on=on, names=names, field=policy_field))
        accepted: list[Choice] = []
        refused: list[CaseError] = []
        for c in in_force:  # no claim covers it: a case only one policy's format accepts is that policy's
            try:
                validate(c.kb.schema, dict(values), source)
                accepted.append(c)
            except CaseError as exc:
                refused.append(exc)
        if len(accepted) == 1:
            return accepted[0].routed(BY_FORMAT)
        if not accepted:
            raise refused[0]
        raise CaseError(source, drug_path, w("route_no_claim", on=on, offered=offered, drug_field=drug_field, policy_field=policy_field))


def _shown(value: Any) -> str:
    return repr(value[:60]) if isinstance(value, str) else repr(value)[:60]


def _prevailing(claiming: list[tuple[Choice, tuple[str, str, str]]]) -> list[tuple[Choice, tuple[str, str, str]]]:
    """The claiming versions but those another claiming one prevails over (prevails_over/1)."""
    beaten = {p for c, _ in claiming for p in prevails_over(c.kb)}
    return [(c, claim) for c, claim in claiming if c.kb.identity.policy not in beaten]


def own_drug(kb: KnowledgeBase, values: Mapping[str, Any], asked: Any, source: str, field: str, others: "list[KnowledgeBase] | tuple" = ()) -> tuple[Optional[tuple[str, str, str]], str]:
    """The claim of a version that covers a case asking for a drug (if any) and the drug's key, when it decides that drug; else the case is refused.

    A drug the version does not know is refused as its schema reads it (a
    near key suggested); a drug it knows but does not authorize, naming the
    drugs it does.
    """
    w = kb.vocabulary.word
    key = drug_key(kb, asked)
    elsewhere = [o.identity.policy for o in others if drug_key(o, asked) in drugs_of(o)]
    own = drugs_of(kb)
    own_words = ", ".join(own) or w("route_no_drug")
    if key is None and elsewhere:  # another policy of the tree decides it: say so before this version's schema does
        theirs = drug_key(next(o for o in others if o.identity.policy == elsewhere[0]), asked)
        also = " " + w("route_also", others=", ".join(elsewhere))
        raise CaseError(source, field, w("route_not_this_policy", policy=kb.identity.policy, drug=theirs, also=also, own=own_words))
    if key is None:
        validate(kb.schema, dict(values), source)
        raise CaseError(source, field, w("route_unknown_drug", drug=_shown(asked)))
    if key not in own:
        also = " " + w("route_also", others=", ".join(elsewhere)) if elsewhere else ""
        raise CaseError(source, field, w("route_not_this_policy", policy=kb.identity.policy, drug=key, also=also, own=own_words))
    return covering(kb, values, key), key


def covering(kb: KnowledgeBase, values: Mapping[str, Any], drug: Optional[str]) -> Optional[tuple[str, str, str]]:
    """The first claim/3 of a version (for ``drug``, or for any drug) that covers a case: a field the case gives that value."""
    for claim in claims(kb):
        d, field, value = claim
        if drug is not None and d != drug:
            continue
        given = values.get(field)
        items = given if isinstance(given, (list, tuple)) else [given]
        if any(isinstance(v, str) and v == value for v in items):
            return claim
    return None


def drugs_of(kb: KnowledgeBase) -> tuple[str, ...]:
    """The drugs a version decides requests for: those its claims name, and the one it authorizes (requested_drug/1)."""
    return kb.derived("claimed_drugs", lambda: tuple(sorted({d for d, _, _ in claims(kb)} | {str(a[0]) for a in kb.facts("requested_drug", 1)})))


def drug_key(kb: KnowledgeBase, raw: Any) -> Optional[str]:
    """The key of the drug vocabulary a requested drug stands for in a version: a key, a name the KB knows (key_name/3), or a code of its tables."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_NAME_TEXT:
        return None
    memo = kb.derived("requested_drug_keys", dict)
    if raw in memo:
        return memo[raw]
    schema = kb.schema
    field = schema.by_name.get(schema.role(REQUESTED_DRUG) or "")
    vocabulary = field.kind.vocabulary if field is not None else None
    keys = schema.vocabularies.get(vocabulary or "", {})
    key: Optional[str] = raw if raw in keys else None
    if key is None and vocabulary in schema.names:
        key = schema.names[vocabulary].key_of(raw)
    if key is None:
        coded = {str(k) for _system, code, match, v, k in kb.facts("code", 5) if str(code) == raw.strip() and str(v) == vocabulary and str(match) == "exact"}
        key = coded.pop() if len(coded) == 1 else None
    if len(memo) < 10_000:
        memo[raw] = key
    return key


def claims(kb: KnowledgeBase) -> tuple[tuple[str, str, str], ...]:
    """The (drug, field, value) requests a version says it decides (claim/3)."""
    return kb.derived("claims", lambda: tuple(sorted({(str(a[1]), str(a[2]), str(a[3])) for a in kb.static_model if a[0] == "claim" and len(a) == 4})))


def prevails_over(kb: KnowledgeBase) -> tuple[str, ...]:
    """The policies a version prevails over where both claim a request (prevails_over/1)."""
    return kb.derived("prevails_over", lambda: tuple(sorted(str(a[1]) for a in kb.static_model if a[0] == "prevails_over" and len(a) == 2)))


def iso_date(text: Optional[str]) -> Optional[datetime.date]:
    """An ISO date YYYY-MM-DD as a date, or None when it is not one."""
    m = DATE_PATTERN.match(text) if isinstance(text, str) else None
    try:
        return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    except ValueError:
        return None


def shift(date: str, days: int) -> str:
    """An ISO date so many days later (earlier when negative): the day before a version starts, the day after one ends."""
    return (datetime.date.fromisoformat(date) + datetime.timedelta(days=days)).isoformat()


def no_version_message(policy: str, date: str, versions: tuple[KnowledgeBase, ...]) -> str:
    """``no version of IP0243 in force on 2023-05-01; versions: 2024-06-01..``"""
    return versions[0].vocabulary.word("route_no_version", policy=policy, date=date, periods=", ".join(kb.identity.period for kb in versions))


def shadowing_warning(cwd: Path) -> Optional[str]:
    """When ``cwd/kb`` is a KB tree that differs from the packaged KB in use, one line saying so.

    After a plain (non-editable) install the package decides with its own
    copy of the KB, so edits to ``./kb`` would go unseen without it.
    """
    local = cwd / "kb"
    if not (local / FRAMEWORK).is_dir():
        return None
    in_use = default_kb_path()
    try:
        if local.resolve() == in_use.resolve() or tree_digest(local) == tree_digest(in_use):
            return None
    except OSError:
        return None
    return Chooser.of(in_use).default().vocabulary.word("kb_shadowed", in_use=in_use)  # loaded only when the warning is due


def near(value: str, known: list[str]) -> str:
    """``; did you mean 'IP0243'?`` for the closest known id, whatever the letters' case."""
    lowered = {k.lower(): k for k in known}
    hint = did_you_mean(value.lower(), list(lowered))
    for low, original in lowered.items():
        hint = hint.replace(f"'{low}'", f"'{original}'")
    return hint
