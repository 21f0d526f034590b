"""Which version of which policy decides a case, and the provenance of a decision.

A KB tree holds every version of every policy side by side
(:class:`~kineret_asp.knowledge.base.KbTree`). A payer decides a request by the
version in force on its date of service, and re-adjudicates an old request
by the version it was made under; so a case is matched to a version before
it is validated, because each version declares its own case schema:

- a case that names a policy (the field whose role is ``policy_selector``)
  is decided by that policy; in a tree of several policies, a case that
  names none is decided by the one whose claims (``claim/3``) cover it;
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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from ..errors import CaseError, KineretError, did_you_mean
from ..knowledge.base import FRAMEWORK, KbTree, KnowledgeBase, default_kb_path, load_kb, load_tree, tree_digest, tree_root
from ..knowledge.schema import DATE_OF_SERVICE, DATE_PATTERN, POLICY_SELECTOR
from .case import Case
from .validation import Problems, validate, validator

# how a version was chosen (the provenance's chosen_by)
BY_DATE, BY_FOLDER, LATEST, GIVEN = "date_of_service", "folder", "latest", "given"

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
        }


def provenance(kb: KnowledgeBase, chosen_by: str = GIVEN) -> Provenance:
    """The provenance of the decisions a version makes (built once per version and way of choosing)."""

    def make() -> Provenance:
        from .. import __version__

        ident = kb.identity
        return Provenance(ident.policy, ident.effective_from, ident.effective_to, kb.folder, str(kb.root), kb.rules_sha256, kb.framework_sha256, __version__, chosen_by)

    return kb.derived(f"provenance:{chosen_by}", make)


@dataclass(frozen=True)
class Choice:
    """The version that decides a case, and how it was chosen."""

    kb: KnowledgeBase
    how: str

    @property
    def provenance(self) -> Provenance:
        return provenance(self.kb, self.how)


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

    # --- choosing ------------------------------------------------------------------

    @cached_property
    def _fields(self) -> tuple[Optional[str], Optional[str], Any]:
        """The fields that choose (found by the framework's roles, the same in every version), and a schema to check them."""
        schema = self.default().schema
        return schema.role(DATE_OF_SERVICE), schema.role(POLICY_SELECTOR), schema

    def choose(self, data: Any, source: str, where: Optional[Path] = None) -> Choice:
        """The version that decides a case given as decoded data (or a Case), from a file at ``where``."""
        if self.fixed is not None:
            return self._given
        tree = self.tree
        assert tree is not None
        values = data if type(data) is dict else _values(data)
        date_field, policy_field, schema = self._fields
        raw = values.get(date_field) if date_field else None
        named = values.get(policy_field) if policy_field else None
        plain = named is None and where is None and (raw is None or type(raw) is str)
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
                raise CaseError(source, policy_field or "", f"unknown {noun.split(' ', 1)[-1]} {shown[:60]!r}; expected one of {', '.join(known)}{hint}")
            candidates = [named]
        else:
            candidates = list(policies)
        if date is None and where is not None:
            held = tree.holding(where)
            if held is not None and held.identity.policy in candidates:
                return Choice(held, BY_FOLDER)
        if len(candidates) == 1:
            choice = self._version(candidates[0], date, source, date_field)
        else:
            choice = self._claimed(candidates, values, date, source, date_field, policy_field)
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

    def _claimed(self, candidates: list[str], values: Mapping[str, Any], date: Optional[str], source: str, date_field: Optional[str], policy_field: Optional[str]) -> Choice:
        """In a tree of several policies, the one whose claims cover the case on its date."""
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
        claiming = [c for c in in_force if covers(c.kb, values)]
        beaten = {p for c in claiming for p in prevails_over(c.kb)}
        claiming = [c for c in claiming if c.kb.identity.policy not in beaten]
        if len(claiming) == 1:
            return claiming[0]
        on = f" on {date}" if date else ""
        names = ", ".join(c.kb.identity.policy for c in (claiming or in_force)) or ", ".join(candidates)
        if not in_force and date is not None:
            raise CaseError(source, date_field or "", f"no policy of the KB is in force on {date}; " + "; ".join(no_version_message(p, date, policies[p]) for p in candidates))
        if not claiming:
            for c in in_force:  # a case no policy claims may be no valid case at all: say what is wrong with it first
                validate(c.kb.schema, dict(values), source)
            raise CaseError(source, policy_field or "", f"no policy of the KB decides this case{on} (policies: {names}); name one in {policy_field}")
        raise CaseError(source, policy_field or "", f"several policies decide this case{on} ({names}); name one in {policy_field}")


def covers(kb: KnowledgeBase, values: Mapping[str, Any]) -> bool:
    """Whether a version claims a case: some claim/3 names a field the case gives that value."""
    for _, field, value in claims(kb):
        given = values.get(field)
        items = given if isinstance(given, (list, tuple)) else [given]
        if any(isinstance(v, str) and v == value for v in items):
            return True
    return False


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
    return f"no version of {policy} in force on {date}; versions: {', '.join(kb.identity.period for kb in versions)}"


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
    return f"./kb differs from the KB in use ({in_use}); pass --kb kb to use it, or install with pip install -e ."


def find_version(kb: KbLike, policy: Optional[str], version: str) -> KnowledgeBase:
    """A version of a tree by its policy and effective-from date (the folder's name also works)."""
    tree = load_tree(kb.root if isinstance(kb, KnowledgeBase) else kb)  # type: ignore[arg-type]
    policies = tree.policies
    if policy is None:
        if len(policies) != 1:
            raise KineretError(f"the KB holds several policies ({', '.join(policies)}): name one with --policy")
        policy = next(iter(policies))
    if policy not in policies:
        known = list(policies)
        raise KineretError(f"no policy {policy!r} in the KB; expected one of {', '.join(known)}{near(policy, known)}")
    for kb_version in policies[policy]:
        if version in (kb_version.identity.effective_from, kb_version.path.name):
            return kb_version
    dates = [v.identity.effective_from for v in policies[policy]]
    raise KineretError(f"no version {version} of {policy}; versions: {', '.join(dates)}{did_you_mean(version, dates)}")


def near(value: str, known: list[str]) -> str:
    """``; did you mean 'IP0243'?`` for the closest known id, whatever the letters' case."""
    lowered = {k.lower(): k for k in known}
    hint = did_you_mean(value.lower(), list(lowered))
    for low, original in lowered.items():
        hint = hint.replace(f"'{low}'", f"'{original}'")
    return hint
