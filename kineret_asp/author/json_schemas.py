"""The published JSON Schemas (draft 2020-12) of a policy version: case, decision, change, record.

A tool that writes cases, or reads decisions and batch records, should not
have to read ``.lp`` files or Python to know their shape. Each schema is
generated from the KB: the case from its declared inputs (``kb.schema``),
the decision's values from ``decision_text/2``, ``route_text/2``,
``criterion/4`` and ``reason_text/2``, the echoed case fields from
``decision_echo/1``, change paths from the case's field names, and every
description from ``input_field/4``, ``entry_field/5`` or
``output_field/3`` (``kb/framework/words/formats.lp``). Python only knows the
shape of its own output formats (``Decision.to_dict``, ``Change``, batch
records), never a field of a case.

The schemas of every version folder of the repository's KB are kept in
``schemas/<policy>/<version>/<name>.schema.json``; a test regenerates them
and fails when one is stale.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..cases.changes import MAX_INDEX_DIGITS, OPS
from ..decisions.decision import COUNTED, NOT_COUNTED
from ..knowledge.base import KnowledgeBase, load_kb
from ..knowledge.layout import version_folders
from ..knowledge.schema import (
    BOOLEAN,
    CASE_ID,
    DATE,
    DATE_PATTERN,
    DECIMAL,
    ENTRIES,
    EXPECTATIONS,
    FORMAT_VERSION,
    INTEGER,
    KEY,
    KEYED,
    LIST,
    MAX_LIST_ITEMS,
    MAX_TEXT,
    NAME,
    NAME_PATTERN,
    OBJECT,
    OPEN_KEY,
    OPEN_NAME,
    REQUESTED_DRUG,
    UNIT_VOCABULARY,
    CaseSchema,
    Field,
    Kind,
)
from .example_cases import EXPECT_KEYS

NAMES = ("case", "decision", "change", "record")
SUFFIX = ".schema.json"
ID_PREFIX = "urn:kineret-asp:schema"
REFRESH = "kineret-asp schema --write schemas"
ADD, REMOVE, SET = OPS
JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def relative_path(kb: KnowledgeBase, name: str) -> Path:
    """Where a version's schema lives under ``schemas/``: ``<policy>/<version>/<name>.schema.json``."""
    return Path(kb.path.parent.name) / kb.path.name / f"{name}{SUFFIX}"


def json_schema(kb: KnowledgeBase, name: str) -> dict:
    """One of the published schemas of a KB version (``name`` is one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(NAMES)}")
    return kb.derived(f"json_schema:{name}", lambda: _Builder(kb).build(name))


def schema_text(kb: KnowledgeBase, name: str) -> str:
    """A schema as the bytes written to its file: indented JSON, in a fixed order, ending in a newline."""
    return json.dumps(json_schema(kb, name), indent=2, ensure_ascii=False) + "\n"


def tree_versions(path: Optional[Path]) -> list[KnowledgeBase]:
    """The KB of every version folder of the tree a folder belongs to (the packaged tree by default)."""
    kb = load_kb(path)
    return [load_kb(v.path) for v in version_folders(kb.root)] or [kb]


def expected_files(path: Optional[Path]) -> dict[Path, str]:
    """Every schema file of a KB tree (relative to ``schemas/``) with the text it must hold."""
    out: dict[Path, str] = {}
    for kb in tree_versions(path):
        for name in NAMES:
            out[relative_path(kb, name)] = schema_text(kb, name)
    return out


def write_schemas(path: Optional[Path], dest: Path) -> list[Path]:
    """Write every schema of a KB tree under ``dest``; returns the files whose text changed."""
    changed = []
    for rel, text in expected_files(path).items():
        target = dest / rel
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        changed.append(target)
    return changed


def stale_files(path: Optional[Path], dest: Path) -> list[Path]:
    """The schema files under ``dest`` that are missing, differ from the KB, or belong to no version."""
    expected = expected_files(path)
    stale = [dest / rel for rel, text in expected.items() if not (dest / rel).is_file() or (dest / rel).read_text(encoding="utf-8") != text]
    if dest.is_dir():
        stale += sorted(p for p in dest.rglob(f"*{SUFFIX}") if p.relative_to(dest) not in expected)
    return stale


class _Builder:
    """Builds the schemas of one KB version from its facts."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.vocab = kb.vocabulary
        self.schema: CaseSchema = kb.schema
        from ..cases.versions import drugs_of

        self.case_format = CaseFormatSchema(kb.schema, drugs_of(kb))
        self.words = {(str(fmt), str(name)): str(text) for fmt, name, text in kb.facts("output_field", 3)}
        self.formats = {str(fmt): str(text) for fmt, text in kb.facts("output_format", 2)}

    # --- shared pieces ------------------------------------------------------------

    def header(self, name: str) -> dict:
        v = self.vocab
        title = v.word("schema_title", format=self.formats.get(name, name), policy=v.policy_id, title=v.title, drug=v.drug_name, effective=v.effective_from)
        return {"$schema": JSON_SCHEMA_DRAFT, "$id": f"{ID_PREFIX}:{self.kb.path.parent.name}:{self.kb.path.name}:{name}", "title": title}

    def described(self, fmt: str, field: str, schema: dict) -> dict:
        text = self.words.get((fmt, field))
        return {**schema, "description": text} if text else schema

    def obj(self, fmt: str, props: dict[str, dict], required: list[str], open_: bool = False) -> dict:
        """An object of an output format; its own fields described, other fields of the format (added later in the KB) listed as any value."""
        properties = {k: self.described(fmt, k, v) for k, v in props.items()}
        if open_:
            for (f, k), text in self.words.items():
                if f == fmt and k not in properties:
                    properties[k] = {"description": text}
        return {"type": "object", "properties": properties, "required": required, "additionalProperties": open_}

    def criterion_ids(self) -> dict:
        return {"$ref": "#/$defs/criterion_id"}

    def reason_ids(self) -> dict:
        return {"$ref": "#/$defs/reason_id"}

    def shared_defs(self) -> dict:
        """The definitions every schema of the version may refer to: ids and vocabulary keys."""
        return {
            "criterion_id": {"type": "string", "enum": list(self.vocab.criteria)},
            "reason_id": {"type": "string", "enum": list(self.vocab.reason_texts)},
            **self.case_format.key_defs(),
        }

    def case_id(self) -> dict:
        name = self.schema.role(CASE_ID)
        if name is None:
            return {"type": "null"}
        return {"anyOf": [self.case_format.value(self.schema.by_name[name]), {"type": "null"}]}

    def field_path(self) -> dict:
        """A case field path as a decision's note gives it: field, field[N], field[N].name."""
        alternatives = []
        for f in self.schema.fields:
            if f.kind.name == ENTRIES:
                names = "|".join(re.escape(e.name) for e in f.entry_fields)
                alternatives.append(rf"{re.escape(f.name)}(\[[0-9]+\](\.({names}))?)?")
            elif f.kind.name == LIST:
                alternatives.append(rf"{re.escape(f.name)}(\[[0-9]+\])?")
            else:
                alternatives.append(re.escape(f.name))
        return {"type": "string", "pattern": f"^({'|'.join(alternatives)})$"}

    def defs(self) -> dict:
        criterion = self.obj(
            "criterion",
            {
                "id": self.criterion_ids(),
                "text": {"type": "string"},
                "met": {"type": "boolean"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/criterion"}},
                "notes": {"type": "array", "items": {"type": "string"}},
                "evidence": {"type": "array", "items": {"$ref": "#/$defs/evidence"}},
            },
            ["id", "text", "met", "children"],
        )
        evidence = self.obj(
            "evidence",
            {
                "field": self.field_path(),
                "value": {},
                "status": {"enum": [COUNTED, NOT_COUNTED]},
                "reason": {"type": "string", "minLength": 1},
                "text": {"type": "string"},
            },
            ["field", "value", "status", "text"],
        )
        reason = self.obj(
            "reason",
            {
                "id": self.reason_ids(),
                "text": {"type": "string"},
                "details": {"type": "object", "propertyNames": {"enum": [f.name for f in self.schema.fields]}, "additionalProperties": {"type": "array"}},
            },
            ["id", "text"],
        )
        note = self.obj("note", {"id": {"type": "string", "minLength": 1}, "text": {"type": "string"}, "field": self.field_path()}, ["id", "text", "field"])
        undetermined = self.obj("undetermined", {"id": self.blocking_ids(), "field": self.field_path(), "value": {}, "text": {"type": "string"}}, ["id", "field", "value", "text"])
        return {"criterion": criterion, "evidence": evidence, "reason": reason, "note": note, "undetermined": undetermined, "provenance": self.provenance()}

    def blocking_ids(self) -> dict:
        """What may stand between a case and approval: a criterion, a rule a fact is undetermined for, a case field."""
        return {"anyOf": [self.criterion_ids(), self.reason_ids(), {"enum": [f.name for f in self.schema.fields]}]}

    def provenance(self) -> dict:
        """Which rules decided (versions.Provenance.to_dict), for this version."""
        from ..cases.versions import BY_CLAIM, BY_DATE, BY_DRUG, BY_FOLDER, BY_FORMAT, GIVEN, LATEST, NAMED, ONLY_POLICY

        ident = self.kb.identity
        sha = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
        props = {
            "policy": {"const": ident.policy},
            "version": {"const": ident.effective_from, "format": "date"},
            "effective_to": {"type": ["string", "null"], "format": "date"},
            "folder": {"const": self.kb.folder},
            "kb": {"type": "string", "minLength": 1},
            "rules_sha256": sha,
            "framework_sha256": sha,
            "package_version": {"type": "string", "minLength": 1},
            "chosen_by": {"enum": [BY_DATE, LATEST, BY_FOLDER, GIVEN]},
            "policy_chosen_by": {"enum": [ONLY_POLICY, NAMED, BY_CLAIM, BY_DRUG, BY_FORMAT, BY_FOLDER, GIVEN]},
            "claim": {"anyOf": [{"type": "null"}, self.obj("claim", {k: {"type": "string", "minLength": 1} for k in ("drug", "field", "value")}, ["drug", "field", "value"])]},
        }
        return self.obj("provenance", props, list(props))

    # --- the decision ---------------------------------------------------------------

    def decision_properties(self) -> dict[str, dict]:
        """The fields of ``Decision.to_dict``, in its order."""
        v = self.vocab
        echo: dict[str, dict] = {}
        for (name,) in self.kb.facts("decision_echo", 1):
            f = self.schema.by_name.get(str(name))
            if f is not None:
                shown = self.case_format.field(f)
                shown.pop("default", None)
                echo[f.name] = shown
        return {
            "id": self.case_id(),
            "policy": {"const": v.policy_id},
            "effective_date": {"const": v.effective_from, "format": "date"},
            **echo,
            "decision": {"enum": list(v.decision_texts)},
            "authorization_months": {"type": ["integer", "null"]},
            "criteria": {"type": "array", "items": {"$ref": "#/$defs/criterion"}},
            "unmet": {"type": "array", "items": self.criterion_ids(), "uniqueItems": True},
            "blocking": {"type": "array", "items": self.blocking_ids(), "uniqueItems": True},
            "undetermined": {"type": "array", "items": {"$ref": "#/$defs/undetermined"}},
            "reasons": {"type": "array", "items": {"$ref": "#/$defs/reason"}},
            "route": {"enum": list(v.route_texts)},
            "notes": {"type": "array", "items": {"$ref": "#/$defs/note"}},
            "provenance": {"$ref": "#/$defs/provenance"},
        }

    def decision_object(self) -> dict:
        # A decision is open at its top level: the decision format may add
        # fields (never rename or drop one), so a reader built on this schema
        # must accept a newer program's decisions. Its parts stay closed.
        props = self.decision_properties()
        return self.obj("decision", props, list(props), open_=True)

    def decision(self) -> dict:
        return {**self.header("decision"), **self.decision_object(), "$defs": {**self.defs(), **self.shared_defs()}}

    # --- a batch record -----------------------------------------------------------------

    def record(self) -> dict:
        line = {"type": "integer", "minimum": 1}
        decided = self.decision_object()
        decided["properties"] = {"line": self.described("record", "line", line), **decided["properties"]}
        decided["required"] = ["line", *decided["required"]]
        error = self.obj(
            "record",
            {"line": line, "id": self.case_id(), "error": {"type": "string", "minLength": 1}, "errors": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}},
            ["line", "id", "error"],
            open_=False,
        )
        error["additionalProperties"] = True  # like a decision, a record may gain fields
        defs = {"decision_record": decided, "error_record": error, **self.defs(), **self.shared_defs()}
        return {**self.header("record"), "oneOf": [{"$ref": "#/$defs/decision_record"}, {"$ref": "#/$defs/error_record"}], "$defs": defs}

    # --- a what-if change -----------------------------------------------------------------

    def change(self) -> dict:
        s = self.schema
        lists = [f for f in s.fields if f.kind.name in (LIST, ENTRIES)]
        entries = [f for f in lists if f.kind.name == ENTRIES]
        index = rf"\[[0-9]{{1,{MAX_INDEX_DIGITS}}}\]"

        def names(fields: list[Field]) -> str:
            return "|".join(re.escape(f.name) for f in fields)

        list_path = f"^({names(lists)})$"
        remove_path = f"^({names(lists)})({index})?$"
        set_paths = [f"^({names(list(s.fields))})$", f"^({names(lists)}){index}$"]
        set_paths += [f"^{re.escape(f.name)}{index}\\.({names(list(f.entry_fields))})$" for f in entries]
        rules: list[dict] = [
            _when(ADD, None, {"required": ["value"], "properties": {"path": {"pattern": list_path}}}),
            _when(REMOVE, None, {"properties": {"path": {"pattern": remove_path}}}),
            _when(SET, None, {"required": ["value"], "properties": {"path": {"anyOf": [{"pattern": p} for p in set_paths]}}}),
        ]
        for f in s.fields:
            if f.kind.name in (LIST, ENTRIES):
                item = self.case_format.entry(f) if f.kind.name == ENTRIES else self.case_format.kind(f.kind.item)  # type: ignore[arg-type]
                pattern = self.case_format.entry(f, partial=True) if f.kind.name == ENTRIES else item
                rules.append(_when(ADD, f"^{re.escape(f.name)}$", _value(item, f.description)))
                rules.append(_when(REMOVE, f"^{re.escape(f.name)}$", _value(pattern, f.description)))
                rules.append(_when(SET, f"^{re.escape(f.name)}$", _value(self.case_format.value(f), f.description)))
                if f.kind.name == ENTRIES:
                    rules.append(_when(SET, f"^{re.escape(f.name)}{index}$", _value(item, f.description)))
                    for e in f.entry_fields:
                        rules.append(_when(SET, f"^{re.escape(f.name)}{index}\\.{re.escape(e.name)}$", _value(self.case_format.field(e), e.description)))
            else:
                rules.append(_when(SET, f"^{re.escape(f.name)}$", _value(self.case_format.field(f, self.object_schemas().get(f.name)), f.description)))
        body = self.obj("change", {"op": {"enum": list(OPS)}, "path": {"type": "string"}, "value": {}}, ["op", "path"])
        return {**self.header("change"), **body, "allOf": rules, "$defs": self.shared_defs()}

    # --- the case ------------------------------------------------------------------------

    def object_schemas(self) -> dict[str, dict]:
        """The shape of the case's object fields the program reads: the expectations of ``test``."""
        name = self.schema.role(EXPECTATIONS)
        if name is None:
            return {}
        ids = {"type": "array", "items": self.criterion_ids()}
        decision = self.decision_properties()
        shapes = {
            "decision": decision["decision"],
            "authorization_months": decision["authorization_months"],
            "unmet": ids,
            "reasons": {"type": "array", "items": self.reason_ids()},
            "route": decision["route"],
            "met": ids,
            "blocking": {"type": "array", "items": self.blocking_ids()},  # as a decision's: a criterion, or a rule a fact is undetermined for
            "unmet_includes": ids,
        }
        return {name: self.obj("expect", {k: shapes[k] for k in EXPECT_KEYS}, [])}

    def case(self) -> dict:
        h = self.header("case")
        out = self.case_format.document(h["title"], h["$id"], self.object_schemas())
        out["$defs"] = self.shared_defs()
        return out

    def build(self, name: str) -> dict:
        return getattr(self, name)()


def _when(op: str, path: Optional[str], then: dict) -> dict:
    """An if/then rule of the change schema: for this op (and a path matching ``path``)."""
    condition: dict[str, Any] = {"properties": {"op": {"const": op}}, "required": ["op"]}
    if path is not None:
        condition["properties"]["path"] = {"pattern": path}
        condition["required"] = ["op", "path"]
    return {"if": condition, "then": then}


def _value(schema: dict, description: str) -> dict:
    return {"properties": {"value": {**schema, "description": description}}}


class CaseFormatSchema:
    """The case format of one version as a JSON Schema, and the schema of each of its fields and values."""

    def __init__(self, schema: CaseSchema, drugs: Sequence[str] = ()):
        self.schema = schema
        self.drugs = tuple(drugs)  # the drugs the version decides requests for (the requested drug's values)

    def document(self, title: str, schema_id: str, objects: Optional[Mapping[str, dict]] = None) -> dict:
        """The case format as a JSON Schema (draft 2020-12), descriptions from the KB.

        ``objects`` gives the schema of an ``object`` field (by field name),
        which the case schema itself leaves open; optional fields also accept
        null, which the validator reads as "not given".
        """
        objects = objects or {}
        return {
            "$schema": JSON_SCHEMA_DRAFT,
            "$id": schema_id,
            "title": title,
            "type": "object",
            "properties": {f.name: self.field(f, objects.get(f.name)) for f in self.schema.fields},
            "required": [f.name for f in self.schema.fields if f.presence == "required"],
            "additionalProperties": False,
            "$defs": self.key_defs(),
        }

    def key_defs(self) -> dict:
        """The keys of every vocabulary a field takes, once each: ``#/$defs/<vocabulary>_key``."""
        used: list[str] = []
        for f in self.schema.fields:
            for k in (f.kind, f.kind.item, *(e.kind for e in f.entry_fields)):
                if k is not None and k.name in KEYED and k.vocabulary and k.vocabulary not in used:
                    used.append(k.vocabulary)
        return {f"{v}_key": {"type": "string", "enum": list(self.schema.vocabularies.get(v, {})), "description": self.schema.noun(v)} for v in used}

    def field(self, f: Field, object_schema: Optional[dict] = None) -> dict:
        """One field as a JSON Schema: its kind, null when it may be left out, its default and description."""
        out = self.value(f, object_schema)
        if f.presence != "required":
            out = {"anyOf": [out, {"type": "null"}]}
            if f.presence == "default" and f.default is not None:
                out["default"] = self.schema.default(f)
        out["description"] = f.description
        return out

    def value(self, f: Field, object_schema: Optional[dict] = None) -> dict:
        """What a given (not null) value of a field must be."""
        k = f.kind
        if FORMAT_VERSION in f.roles:
            return {"type": "integer", "const": k.maximum}
        if REQUESTED_DRUG in f.roles:  # the drugs this version decides requests for (their other names are read too)
            return {"type": "string", "enum": list(self.drugs)}
        if k.name == LIST:
            return {"type": "array", "items": self.kind(k.item), "maxItems": MAX_LIST_ITEMS}  # type: ignore[arg-type]
        if k.name == ENTRIES:
            return {"type": "array", "items": self.entry(f), "maxItems": MAX_LIST_ITEMS}
        if k.name == OBJECT:
            return dict(object_schema) if object_schema is not None else {"type": "object"}
        return self.kind(k)

    def entry(self, f: Field, partial: bool = False) -> dict:
        """An entry of an entries list (``partial``: any of its fields, as a removal pattern gives them)."""
        return {
            "type": "object",
            "properties": {e.name: self.field(e) for e in f.entry_fields},
            "required": [] if partial else [e.name for e in f.entry_fields if e.presence == "required"],
            "additionalProperties": False,
        }

    def kind(self, k: Kind) -> dict:
        """A value of a scalar kind, with the limits the validator applies."""
        if k.name == KEY:
            return {"$ref": f"#/$defs/{k.vocabulary}_key"}
        if k.name == OPEN_KEY:  # a key, or any other name of the open vocabulary
            return {"anyOf": [{"$ref": f"#/$defs/{k.vocabulary}_key"}, {"type": "string", "pattern": _anchored(OPEN_NAME)}]}
        if k.name == NAME:
            return {"type": "string", "pattern": _anchored(NAME_PATTERN)}
        if k.name == INTEGER:
            return {"type": "integer", "minimum": k.minimum, "maximum": k.maximum}
        if k.name == DECIMAL:  # a number in the field's unit, or a value with a unit the KB converts
            units = self.schema.vocabularies.get(UNIT_VOCABULARY, {})
            convertible = [k.unit] + sorted({a for a, b in self.schema.conversions if b == k.unit} | {b for a, b in self.schema.conversions if a == k.unit})
            number = {"type": "number" if k.places else "integer"}
            quantity = {
                "type": "object",
                "properties": {"value": {"type": "number"}, "unit": {"enum": [units.get(u or "", u) for u in convertible] + [u for u in convertible]}},
                "required": ["value"],
                "additionalProperties": False,
            }
            return {"anyOf": [number, quantity], "description": f"in {units.get(k.unit or '', k.unit)}"}
        if k.name == BOOLEAN:
            return {"type": "boolean"}
        if k.name == DATE:
            return {"type": "string", "format": "date", "pattern": _anchored(DATE_PATTERN)}
        return {"type": "string", "maxLength": MAX_TEXT, "pattern": "^[^\\u0000]*$"}


def _anchored(pattern: "re.Pattern[str]") -> str:
    """A validator's regular expression (ending in \\Z) as a JSON Schema pattern (^...$)."""
    text = pattern.pattern
    return "^" + (text[:-2] if text.endswith("\\Z") else text) + "$"
