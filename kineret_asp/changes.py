"""Changes to a case, in the case format's own terms.

A change is ``{"op": "add" | "remove" | "set", "path": ..., "value": ...}``:

- ``add`` appends a value to a list field (``prescriber_specialties``,
  ``genetic_tests``, ``medication_history``, ``current_medications``);
- ``remove`` takes out of a list field every item equal to ``value`` (for
  objects: every entry whose given keys match), or the item at a path with an
  index (``medication_history[1]``);
- ``set`` sets a scalar field (``plan``, ``request``, ``beneficial_response``,
  ``id``, ``description``, ``medication_history[0].months``, ...); ``null``
  clears an optional one.

Applying changes never bypasses validation: the changed case is validated
like any input, so an invalid change gets the same clear error.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from .case import Case, parse_case
from .errors import CaseError, did_you_mean
from .knowledge import KnowledgeBase

OPS = ("add", "remove", "set")
LIST_FIELDS = ("prescriber_specialties", "genetic_tests", "medication_history", "current_medications")
SCALAR_FIELDS = ("id", "description", "plan", "request", "indication", "beneficial_response")
_PATH = re.compile(r"^(?P<field>[a-z_]+)(?:\[(?P<index>\d+)\](?:\.(?P<key>[a-z_]+))?)?$")


@dataclass(frozen=True)
class Change:
    """One change to a case (see the module docstring)."""

    op: str
    path: str
    value: Any = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op != "remove" or self.value is not None:
            out["value"] = self.value
        return out

    @classmethod
    def add(cls, path: str, value: Any) -> "Change":
        return cls("add", path, value)

    @classmethod
    def remove(cls, path: str, value: Any = None) -> "Change":
        return cls("remove", path, value)

    @classmethod
    def set(cls, path: str, value: Any) -> "Change":
        return cls("set", path, value)

    def describe(self) -> str:
        if self.op == "remove" and self.value is None:
            return f"remove {self.path}"
        return f"{self.op} {self.path} {_short(self.value)}"


ChangeLike = Union[Change, Mapping[str, Any]]


def _short(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def to_change(item: ChangeLike, where: str) -> Change:
    """Validate the shape of one change (op, path, value)."""
    if isinstance(item, Change):
        data = item.to_dict()
    elif isinstance(item, Mapping):
        data = dict(item)
    else:
        raise CaseError("<changes>", where, f"expected a change object {{op, path, value}}, got {type(item).__name__}")
    for key in data:
        if key not in ("op", "path", "value"):
            from .case import field_name

            raise CaseError("<changes>", f"{where}.{field_name(key)}", f"unknown field{did_you_mean(str(key)[:60], ('op', 'path', 'value'))}; expected op, path, value")
    op = data.get("op")
    if op not in OPS:
        hint = did_you_mean(op, OPS) if isinstance(op, str) else ""
        raise CaseError("<changes>", f"{where}.op", f"expected one of add, remove, set, got {op!r}{hint}")
    path = data.get("path")
    if not isinstance(path, str) or not _PATH.match(path):
        shown = path if not isinstance(path, str) or len(path) <= 60 else path[:57] + "..."
        raise CaseError("<changes>", f"{where}.path", f"expected a field path such as plan, prescriber_specialties or medication_history[0].months, got {shown!r}")
    if op in ("add", "set") and "value" not in data:
        raise CaseError("<changes>", f"{where}.value", f"missing value for {op}")
    return Change(op, path, data.get("value"))


def _matches(item: Any, pattern: Any) -> bool:
    if isinstance(pattern, Mapping) and isinstance(item, Mapping):
        return all(item.get(k) == v or (k == "sample" and v is False and k not in item) for k, v in pattern.items())
    return item == pattern


def apply_changes(case: Case, changes: Iterable[ChangeLike], kb: KnowledgeBase) -> Case:
    """The case with the changes applied in order, validated again."""
    data = case.to_dict(with_expect=False)
    for i, raw in enumerate(changes):
        where = f"changes[{i}]"
        change = to_change(raw, where)
        m = _PATH.match(change.path)
        assert m is not None
        fld, index, key = m.group("field"), m.group("index"), m.group("key")
        if fld not in LIST_FIELDS and fld not in SCALAR_FIELDS:
            known = LIST_FIELDS + SCALAR_FIELDS
            raise CaseError("<changes>", f"{where}.path", f"unknown field {fld!r}{did_you_mean(fld, known)}; expected one of {', '.join(known)}")
        if change.op == "add":
            if fld not in LIST_FIELDS or index is not None:
                raise CaseError("<changes>", f"{where}.path", f"add needs a list field ({', '.join(LIST_FIELDS)}), got {change.path!r}")
            data.setdefault(fld, []).append(copy.deepcopy(change.value))
        elif change.op == "remove":
            if fld not in LIST_FIELDS:
                raise CaseError("<changes>", f"{where}.path", f"remove needs a list field ({', '.join(LIST_FIELDS)}), got {change.path!r}")
            items = data.setdefault(fld, [])
            if index is not None:
                if key is not None:
                    raise CaseError("<changes>", f"{where}.path", "remove takes a whole entry (medication_history[1]), not one of its fields; use set to change a field")
                if int(index) >= len(items):
                    raise CaseError("<changes>", f"{where}.path", f"no entry {index}: {fld} has {len(items)}")
                del items[int(index)]
            else:
                kept = [x for x in items if not _matches(x, change.value)]
                if len(kept) == len(items):
                    raise CaseError("<changes>", f"{where}.value", f"no item of {fld} matches {_short(change.value)}")
                data[fld] = kept
        else:  # set
            if index is not None:
                items = data.get(fld, [])
                if fld not in LIST_FIELDS or int(index) >= len(items):
                    raise CaseError("<changes>", f"{where}.path", f"no entry {change.path}: {fld} has {len(items) if isinstance(items, list) else 0} entries")
                if key is None:
                    items[int(index)] = copy.deepcopy(change.value)
                elif change.value is None:
                    items[int(index)].pop(key, None)
                else:
                    items[int(index)][key] = copy.deepcopy(change.value)
            else:
                if fld in LIST_FIELDS:
                    data[fld] = copy.deepcopy(change.value)
                elif change.value is None:
                    data.pop(fld, None)
                else:
                    data[fld] = copy.deepcopy(change.value)
    return parse_case(data, f"{case.source} (after changes)", kb)


def parse_assignment(text: str, op: str) -> Change:
    """Parse a command-line ``PATH=VALUE`` (VALUE is JSON, or else a plain string)."""
    import json

    path, sep, raw = text.partition("=")
    if not sep and op != "remove":
        raise CaseError("<command line>", f"--{op}", f"expected PATH=VALUE, got {text!r}")
    value: Any
    if not sep:
        value = None
    else:
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
    return to_change({"op": op, "path": path.strip(), **({"value": value} if sep or op != "remove" else {})}, f"--{op} {text}")


def change_list(items: Optional[Sequence[ChangeLike]]) -> list[Change]:
    return [to_change(c, f"changes[{i}]") for i, c in enumerate(items or [])]
