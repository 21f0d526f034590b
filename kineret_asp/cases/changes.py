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

from ..errors import CaseError, did_you_mean
from ..knowledge.base import KnowledgeBase
from ..knowledge.schema import KEY, UNDETERMINED, field_name
from .case import Case
from .validation import validate

OPS = ("add", "remove", "set")
MAX_INDEX_DIGITS = 6
_PATH = re.compile(r"^(?P<field>[a-z_][a-z0-9_]*)(?:\[(?P<index>\d{1,6})\](?:\.(?P<key>[a-z_][a-z0-9_]*))?)?$")


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
    from ..safetext import dumps

    return dumps(value, indent=None)


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
            raise CaseError("<changes>", f"{where}.{field_name(key)}", f"unknown field{did_you_mean(str(key)[:60], ('op', 'path', 'value'))}; expected op, path, value")
    op = data.get("op")
    if op not in OPS:
        hint = did_you_mean(op, OPS) if isinstance(op, str) else ""
        raise CaseError("<changes>", f"{where}.op", f"expected one of add, remove, set, got {op!r}{hint}")
    path = data.get("path")
    if not isinstance(path, str) or not _PATH.match(path):
        shown = path if not isinstance(path, str) or len(path) <= 60 else path[:57] + "..."
        raise CaseError("<changes>", f"{where}.path", f"expected a field path: a field, a list field's entry (field[0]) or an entry's field (field[0].name), got {shown!r}")
    if op in ("add", "set") and "value" not in data:
        raise CaseError("<changes>", f"{where}.value", f"missing value for {op}")
    return Change(op, path, data.get("value"))


def _matches(item: Any, pattern: Any, defaults: Mapping[str, Any]) -> bool:
    """Whether a list item matches a removal pattern (an entry matches on the fields the pattern gives)."""
    if isinstance(pattern, Mapping) and isinstance(item, Mapping):
        return all(item.get(k, _default_value(defaults.get(k))) == v for k, v in pattern.items())
    return item == pattern


def _default_value(value: Any) -> Any:
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def apply_changes(case: Case, changes: Iterable[ChangeLike], kb: KnowledgeBase) -> Case:
    """The case with the changes applied in order, validated again."""
    try:
        return _apply(case, changes, kb)
    except RecursionError:
        raise CaseError("<changes>", "", "a change's value is nested too deeply") from None


def _apply(case: Case, changes: Iterable[ChangeLike], kb: KnowledgeBase) -> Case:
    schema = kb.schema
    lists = [f.name for f in schema.list_fields()]
    scalars = [f.name for f in schema.scalar_fields()]
    data = case.to_dict(with_expect=False)
    for i, raw in enumerate(changes):
        where = f"changes[{i}]"
        change = to_change(raw, where)
        m = _PATH.match(change.path)
        assert m is not None
        fld, index, key = m.group("field"), m.group("index"), m.group("key")
        if fld not in lists and fld not in scalars:
            known = lists + scalars
            raise CaseError("<changes>", f"{where}.path", f"unknown field {fld!r}{did_you_mean(fld, known)}; expected one of {', '.join(known)}")
        if change.op == "add":
            if fld not in lists or index is not None:
                raise CaseError("<changes>", f"{where}.path", f"add needs a list field ({', '.join(lists)}), got {change.path!r}")
            data.setdefault(fld, []).append(copy.deepcopy(change.value))
        elif change.op == "remove":
            if fld not in lists:
                raise CaseError("<changes>", f"{where}.path", f"remove needs a list field ({', '.join(lists)}), got {change.path!r}")
            items = data.setdefault(fld, [])
            if index is not None:
                if key is not None:
                    raise CaseError("<changes>", f"{where}.path", f"remove takes a whole entry ({fld}[{index}]), not one of its fields; use set to change a field")
                if int(index) >= len(items):
                    raise CaseError("<changes>", f"{where}.path", f"no entry {index}: {fld} has {len(items)}")
                del items[int(index)]
            else:
                kept = [x for x in items if not _matches(x, change.value, data_defaults(schema, fld))]
                if len(kept) == len(items):
                    raise CaseError("<changes>", f"{where}.value", f"no item of {fld} matches {_short(change.value)}")
                data[fld] = kept
        else:  # set
            if index is not None:
                items = data.get(fld, [])
                if fld not in lists or int(index) >= len(items):
                    raise CaseError("<changes>", f"{where}.path", f"no entry {change.path}: {fld} has {len(items) if isinstance(items, list) else 0} entries")
                if key is None:
                    items[int(index)] = copy.deepcopy(change.value)
                elif change.value is None:
                    items[int(index)].pop(key, None)
                else:
                    if not isinstance(items[int(index)], dict):
                        raise CaseError("<changes>", f"{where}.path", f"{fld}[{index}] is not an object with fields")
                    items[int(index)][key] = copy.deepcopy(change.value)
            else:
                if fld in lists:
                    data[fld] = copy.deepcopy(change.value)
                elif change.value is None:
                    data.pop(fld, None)
                else:
                    data[fld] = copy.deepcopy(change.value)
                    settle(data, fld, schema)
    return validate(kb.schema, data, f"{case.source} (after changes)")


def settle(data: dict, fld: str, schema: Any) -> None:
    """A field set to a value is no longer undetermined: the case's undetermined facts about it go."""
    name = schema.role(UNDETERMINED)
    spec = schema.by_name.get(name or "")
    if spec is None or not data.get(spec.name):
        return
    keyed = [e.name for e in spec.entry_fields if e.kind.name == KEY][:1]
    data[spec.name] = [u for u in data[spec.name] if not any(isinstance(u, dict) and u.get(k) == fld for k in keyed)]


def data_defaults(schema, list_field: str) -> dict[str, Any]:
    """The default of each field of a list's entries (a pattern may leave them out)."""
    f = schema.by_name.get(list_field)
    if f is None:
        return {}
    return {e.name: e.default for e in f.entry_fields if e.presence == "default"}


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
        except RecursionError:
            raise CaseError("<command line>", f"--{op}", "value nested too deeply: expected a key, or a JSON entry with fields") from None
    return to_change({"op": op, "path": path.strip(), **({"value": value} if sep or op != "remove" else {})}, f"--{op} {text}")


def change_list(items: Optional[Sequence[ChangeLike]]) -> list[Change]:
    return [to_change(c, f"changes[{i}]") for i, c in enumerate(items or [])]
