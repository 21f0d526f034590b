"""The reviewer's workbench (``kineret-asp serve``, ``GET /review``): open a case, try changes, see the review page move.

The page is plain HTML made here from the KB: its words are the KB's
(``framework/words/workbench.lp``), and its form controls are made from the
case schema (every list of entries gets an "add" form with one labelled
control per entry field, every list an "add" and a "remove", every plain
field a "set"); a field the program fills in itself (the format version,
the case id, the expectations, the list of facts an input could not
establish, the policy selector) or free text gets none. A small script
(:data:`SCRIPT`, served by the package, no build step, nothing from outside)
keeps the case as opened and the list of changes, and after each change
posts both to the server, which answers with :func:`answer`: the case with
the changes applied (through :mod:`kineret_asp.cases.changes`, as
``what-if`` applies them), its decision, blocking list and "what to ask the
prescriber", and the review page's section for it
(:func:`~kineret_asp.explain.review_page.html_section`). The case as opened
is never altered: every answer is the opened case plus the change list.

A request may also be opened by its prior-authorization number (or its
decision id) from the decision log: the body then names it (``{"logged":
"IP0243-..."}``) instead of carrying the case, and the case is read from
the log the service was given, never from the client; the answer adds the
logged record and the reviewer's notes kept beside it. A change set is saved
as such a note with :func:`save_note` (the logged record is never touched),
and re-applied by naming it (``{"logged": ..., "note": ...}``). The log is
any object with the methods of :class:`~kineret_asp.decision_log.DecisionLog`
(``get``, ``notes``, ``note``, ``add_note``).

Every string the page shows passes through
:func:`~kineret_asp.safetext.safe_html`; the script sets text, never markup,
except the review section, which the server escaped. The page's
Content-Security-Policy (:data:`CSP`) lets it load its own script and style
and talk to its own server, nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Optional

from ..cases.changes import change_list
from ..errors import CaseError, NotFound
from ..knowledge.schema import BOOLEAN, CASE_ID, DATE, ENTRIES, EXPECTATIONS, FORMAT_VERSION, INTEGER, KEYED, LIST, POLICY_SELECTOR, TEXT, UNDETERMINED, Field, Kind
from ..safetext import safe_html, safe_json
from .review_page import _STYLE, HTML, ReviewCase, _headings, html_section, render_report, review_items, review_model

CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
"""The page loads its own script and style and posts to its own server; nothing else, nothing inline runs."""
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
SKIPPED_ROLES = frozenset({FORMAT_VERSION, CASE_ID, EXPECTATIONS, POLICY_SELECTOR, UNDETERMINED})
"""Fields the reviewer does not change by hand: the program or the input fills them in."""
REQUEST_FIELDS = ("case", "logged", "changes", "note")
NOTE_FIELDS = ("changes", "reviewer", "comment")
NOTE_TEXT_LIMITS = {"reviewer": 200, "comment": 4000}
"""The longest reviewer name and comment a note keeps (characters)."""
SHOWN_KEY = 100
"""At most this much of a number or id a client sent is repeated in an error."""


def _options(kb: Any, kind: Kind) -> list[list[str]]:
    """A keyed kind's keys with their labels, in the KB's order."""
    return [[key, label] for key, label in kb.vocabulary.keys.get(kind.vocabulary or "", {}).items()]


def _input(kb: Any, f: Field, kind: Kind) -> dict:
    """One control: its name, kind, whether it must be given, the keys it offers (an open key also takes any name)."""
    control: dict = {"name": f.name, "kind": kind.name, "required": f.presence == "required", "label": f.name, "description": f.description}
    if kind.name in KEYED:
        control["options"] = _options(kb, kind)
        control["open"] = kind.name != KEYED[0]
    if kind.name == INTEGER:
        control["min"], control["max"] = kind.minimum, kind.maximum
    return control


def controls(kb: Any) -> list[dict]:
    """The form controls the case schema gives, field by field, in the schema's order."""
    w = kb.vocabulary.word
    out: list[dict] = []
    for f in kb.schema.fields:
        if f.roles & SKIPPED_ROLES or f.kind.name == TEXT:
            continue
        if f.kind.name == ENTRIES:
            inputs = [_input(kb, e, e.kind) for e in f.entry_fields if e.kind.name != TEXT]
            out.append({"op": "add", "field": f.name, "legend": w("wb_add_entry", field=f.name), "description": f.description, "inputs": inputs, "entries": True, "button": w("wb_add_button")})
            out.append({"op": "remove", "field": f.name, "legend": w("wb_remove_item", field=f.name), "description": f.description, "entries": True, "button": w("wb_remove_button")})
        elif f.kind.name == LIST and f.kind.item is not None:
            out.append(
                {
                    "op": "add",
                    "field": f.name,
                    "legend": w("wb_add_item", field=f.name),
                    "description": f.description,
                    "inputs": [_input(kb, f, f.kind.item)],
                    "entries": False,
                    "button": w("wb_add_button"),
                }
            )
            out.append({"op": "remove", "field": f.name, "legend": w("wb_remove_item", field=f.name), "description": f.description, "entries": False, "button": w("wb_remove_button")})
        elif f.kind.scalar:
            out.append(
                {
                    "op": "set",
                    "field": f.name,
                    "legend": w("wb_set_field", field=f.name),
                    "description": f.description,
                    "inputs": [_input(kb, f, f.kind)],
                    "entries": False,
                    "button": w("wb_set_button"),
                }
            )
    return out


def _control_html(c: dict, n: int, kb: Any) -> list[str]:
    """One change form, every control labelled; the remove forms' choices are filled by the script from the case."""
    esc = safe_html
    w = kb.vocabulary.word
    form = f"wb-{n}"
    entries = "true" if c["entries"] else "false"
    out = [
        f'<form class="change" id="{form}" data-op="{esc(c["op"])}" data-field="{esc(c["field"])}" data-entries="{entries}">',
        "<fieldset>",
        f"<legend>{esc(c['legend'])}</legend>",
        f'<p class="description" id="{form}-about">{esc(c["description"])}</p>',
    ]
    if c["op"] == "remove":
        out.append(f'<label for="{form}-item">{esc(c["field"])}</label>')
        out.append(f'<select id="{form}-item" name="item" data-entries="{entries}" aria-describedby="{form}-about" required></select>')
    for k, i in enumerate(c.get("inputs", ())):
        cid = f"{form}-{k}"
        required = " required" if i["required"] else ""
        out.append(f'<label for="{cid}">{esc(i["label"])}</label>')
        kind = i["kind"]
        attrs = f'id="{cid}" name="{esc(i["name"])}" data-kind="{esc(kind)}" aria-describedby="{form}-about"{required}'
        if "options" in i and not i.get("open"):
            opts = [] if i["required"] else [f'<option value="">{esc(w("wb_not_given"))}</option>']
            opts += [f'<option value="{esc(key)}">{esc(label)} ({esc(key)})</option>' for key, label in i["options"]]
            out.append(f"<select {attrs}>{''.join(opts)}</select>")
        elif "options" in i:
            out.append(f'<input type="text" list="{cid}-keys" autocomplete="off" {attrs}>')
            out.append(f'<datalist id="{cid}-keys">' + "".join(f'<option value="{esc(key)}">{esc(label)}</option>' for key, label in i["options"]) + "</datalist>")
        elif kind == BOOLEAN:
            opts = [] if i["required"] else [f'<option value="">{esc(w("wb_not_given"))}</option>']
            opts += [f'<option value="true">{esc(w("wb_true"))}</option>', f'<option value="false">{esc(w("wb_false"))}</option>']
            out.append(f"<select {attrs}>{''.join(opts)}</select>")
        elif kind == INTEGER:
            bounds = "".join(f' {a}="{v}"' for a, v in (("min", i.get("min")), ("max", i.get("max"))) if v is not None)
            out.append(f'<input type="number" step="1"{bounds} {attrs}>')
        elif kind == DATE:
            out.append(f'<input type="date" {attrs}>')
        else:
            out.append(f'<input type="text" {attrs}>')
    out.append(f'<button type="submit">{esc(c["button"])}</button>')
    out += ["</fieldset>", "</form>"]
    return out


def page(kb: Any) -> str:
    """The workbench page: open a request, the change forms, the change list, the review page (filled by the script)."""
    esc = safe_html
    v = kb.vocabulary
    w = v.word
    title = esc(w("wb_title", policy=v.policy_id, title=v.title, drug=v.drug_name))
    words = {key: value for key, value in v.words.items() if key.startswith("wb_")}
    data = safe_json(json.dumps({"words": words}, ensure_ascii=False)).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        '<link rel="stylesheet" href="/review/workbench.css">',
        '<script src="/review/workbench.js" defer></script>',
        "</head>",
        "<body>",
        f"<header><h1>{title}</h1></header>",
        "<main>",
        '<section class="open" aria-labelledby="wb-open-heading">',
        f'<h2 id="wb-open-heading">{esc(w("wb_open_heading"))}</h2>',
        '<form id="wb-open">',
        f'<label for="wb-case">{esc(w("wb_paste_label"))}</label>',
        '<textarea id="wb-case" name="case" rows="8" spellcheck="false"></textarea>',
        f'<label for="wb-file">{esc(w("wb_file_label"))}</label>',
        '<input type="file" id="wb-file" name="file" accept=".json,application/json,application/fhir+json">',
        f'<button type="submit">{esc(w("wb_open_button"))}</button>',
        "</form>",
        '<form id="wb-open-logged">',
        f'<label for="wb-number">{esc(w("wb_number_label"))}</label>',
        '<input type="text" id="wb-number" name="logged" autocomplete="off" spellcheck="false">',
        f'<button type="submit">{esc(w("wb_open_number_button"))}</button>',
        "</form>",
        '<div id="wb-errors" role="alert" aria-live="assertive"></div>',
        '<p id="wb-logged" hidden></p>',
        "</section>",
        '<section class="changes" aria-labelledby="wb-changes-heading" hidden id="wb-changes">',
        f'<h2 id="wb-changes-heading">{esc(w("wb_changes_heading"))}</h2>',
        f"<p>{esc(w('wb_changes_hint'))}</p>",
    ]
    for n, c in enumerate(controls(kb)):
        out += _control_html(c, n, kb)
    out += [
        f'<h3 id="wb-list-heading">{esc(w("wb_change_list_heading"))}</h3>',
        '<ol id="wb-change-list" aria-labelledby="wb-list-heading"></ol>',
        f'<p id="wb-no-changes">{esc(w("wb_no_changes"))}</p>',
        '<div class="actions">',
        f'<button type="button" id="wb-undo">{esc(w("wb_undo_button"))}</button>',
        f'<button type="button" id="wb-download">{esc(w("wb_download_button"))}</button>',
        f'<button type="button" id="wb-page">{esc(w("wb_page_button"))}</button>',
        f'<button type="button" id="wb-print">{esc(w("wb_print_button"))}</button>',
        "</div>",
        '<div id="wb-log-part" hidden>',
        '<form id="wb-save">',
        "<fieldset>",
        f"<legend>{esc(w('wb_save_legend'))}</legend>",
        f'<p class="description" id="wb-save-about">{esc(w("wb_save_hint"))}</p>',
        f'<label for="wb-reviewer">{esc(w("wb_reviewer_label"))}</label>',
        f'<input type="text" id="wb-reviewer" name="reviewer" maxlength="{NOTE_TEXT_LIMITS["reviewer"]}" autocomplete="name" aria-describedby="wb-save-about">',
        f'<label for="wb-comment">{esc(w("wb_comment_label"))}</label>',
        f'<textarea id="wb-comment" name="comment" rows="3" maxlength="{NOTE_TEXT_LIMITS["comment"]}" aria-describedby="wb-save-about"></textarea>',
        f'<button type="submit">{esc(w("wb_save_button"))}</button>',
        "</fieldset>",
        "</form>",
        '<p id="wb-save-status" role="status" aria-live="polite"></p>',
        f'<h3 id="wb-notes-heading">{esc(w("wb_notes_heading"))}</h3>',
        '<ol id="wb-notes" aria-labelledby="wb-notes-heading"></ol>',
        f'<p id="wb-no-notes">{esc(w("wb_no_notes"))}</p>',
        "</div>",
        "</section>",
        '<section class="review" aria-labelledby="wb-review-heading">',
        f'<h2 id="wb-review-heading">{esc(w("wb_review_heading"))}</h2>',
        '<p id="wb-status" role="status" aria-live="polite"></p>',
        f'<div id="wb-review" aria-live="polite"><p>{esc(w("wb_nothing_open"))}</p></div>',
        "</section>",
        "</main>",
        f'<script type="application/json" id="wb-data">{data}</script>',
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Opened:
    """A workbench request read: the case as opened, the changes to try, and the log's record (and note) it came from."""

    case: Any
    changes: list
    record: Any = None
    note: Any = None


def logged_record(log: Any, key: Any, kb: Any) -> Any:
    """The decision log's record with this prior-authorization number or decision id; :class:`NotFound` without a log or a record."""
    w = kb.vocabulary.word
    shown = str(key)[:SHOWN_KEY]
    if log is None:
        raise NotFound(w("api_no_log", number=shown))
    record = log.get(key) if isinstance(key, str) and key.strip() == key and key else None
    if record is None:
        raise NotFound(w("api_no_decision", id=shown))
    return record


def _request(data: Any, kb: Any, log: Any) -> Opened:
    """``{"case", "changes"}``, ``{"logged", "changes"}`` or ``{"logged", "note"}``, read (the logged case from the log)."""
    w = kb.vocabulary.word
    if not isinstance(data, dict) or ("case" not in data and "logged" not in data) or not isinstance(data.get("changes", []), list):
        raise CaseError("<request>", "", w("api_review_body"))
    extra = sorted(set(data) - set(REQUEST_FIELDS))
    if extra:
        raise CaseError("<request>", extra[0], w("api_review_field", expected=", ".join(REQUEST_FIELDS)))
    if "case" in data:
        if "logged" in data:
            raise CaseError("<request>", "logged", w("api_review_both"))
        if "note" in data:
            raise CaseError("<request>", "note", w("api_review_note"))
        return Opened(data["case"], data.get("changes", []))
    if not isinstance(data["logged"], str):
        raise CaseError("<request>", "logged", w("api_review_body"))
    if "note" in data and "changes" in data:
        raise CaseError("<request>", "note", w("api_review_note"))
    record = logged_record(log, data["logged"], kb)
    if "note" not in data:
        return Opened(record.case, data.get("changes", []), record)
    note = log.note(record.id, data["note"]) if isinstance(data["note"], str) else None
    if note is None:
        raise NotFound(w("api_no_note", note=str(data["note"])[:SHOWN_KEY], id=record.id))
    return Opened(record.case, list(note.changes), record, note)


def _changed(data: Any, chooser: Any, log: Any) -> tuple[Opened, Any, Any]:
    """The request read, and the what-if answer: the case as opened with the changes applied (the opened case is never altered)."""
    from .whatif import what_if

    opened = _request(data, chooser.default(), log)
    result = what_if(opened.case, change_list(opened.changes), chooser)
    return opened, result, result.after


def describe(change: Any) -> str:
    """A change on one line, as the page lists it: ``add drug_categories {"drug":"x","category":"other"}``."""
    out = f"{change.op} {change.path}"
    if change.op != "remove" or change.value is not None:
        out += " " + json.dumps(change.value, ensure_ascii=False, separators=(",", ":"))
    return out


def _logged_lines(opened: Opened, result: Any, kb: Any) -> tuple[str, ...]:
    """The review page's footer lines for a request read from the log: the record, and the changes shown (a note's, or tried)."""
    if opened.record is None:
        return ()
    w = kb.vocabulary.word
    r = opened.record
    lines = [w("review_logged_line", id=r.id, number=w("wb_number", number=r.pa_number) if r.pa_number else w("wb_no_number"), when=r.recorded_at)]
    changes = "; ".join(describe(c) for c in result.changes)
    if opened.note is not None:
        n = opened.note
        lines.append(w("review_note_line", id=n.id, reviewer=n.reviewer or w("wb_no_reviewer"), when=n.recorded_at, changes=changes or w("review_no_changes")))
        if n.comment:
            lines.append(w("review_comment_line", comment=n.comment))
    elif changes:
        lines.append(w("review_tried_line", changes=changes))
    return tuple(lines)


def note_summary(note: Any, kb: Any) -> dict:
    """A note as the workbench lists it: what was saved, and one line saying it in the KB's words."""
    v = kb.vocabulary
    line = v.counted(
        "wb_note_line", len(note.changes), when=note.recorded_at, reviewer=note.reviewer or v.word("wb_no_reviewer"), count=len(note.changes), decision=v.decision_texts.get(note.outcome, note.outcome)
    )
    return {"id": note.id, "recorded_at": note.recorded_at, "reviewer": note.reviewer, "comment": note.comment, "changes": note.changes, "outcome": note.outcome, "line": line}


def _logged_summary(record: Any, kb: Any) -> dict:
    v = kb.vocabulary
    outcome = str(record.decision.get("decision", "")) if isinstance(record.decision, dict) else ""
    line = v.word(
        "wb_logged_line",
        id=record.id,
        number=v.word("wb_number", number=record.pa_number) if record.pa_number else v.word("wb_no_number"),
        when=record.recorded_at,
        source=record.source,
        decision=v.decision_texts.get(outcome, outcome) or "-",
    )
    return {"id": record.id, "prior_authorization_number": record.pa_number, "recorded_at": record.recorded_at, "source": record.source, "decision": outcome, "line": line}


def answer(data: Any, chooser: Any, log: Any = None) -> dict:
    """The workbench's answer to ``{"case" | "logged", "changes" | "note"}``: the changed case, its decision and asks, the
    review section; for a logged request also the record it was read from and the reviewer's notes kept beside it."""
    opened, result, decision = _changed(data, chooser, log)
    kb = _kb_of(chooser, decision)
    item: ReviewCase = review_items([result.changed_case], [decision], chooser)[0]
    model = review_model(replace(item, logged=_logged_lines(opened, result, kb)), kb)
    section = "\n".join(html_section(model, _headings(kb), 1))
    out = {
        "case": result.changed_case.to_dict(with_expect=False),
        "changes": [c.to_dict() for c in result.changes],
        "decision": decision.decision,
        "verdict": model.verdict,
        "before": result.before.decision,
        "blocking": list(decision.blocking),
        "asks": [{"id": a.id, "kind": a.kind, "text": a.text, "field": a.field} for a in model.asks],
        "section": section,
    }
    if opened.record is not None:
        out["logged"] = _logged_summary(opened.record, kb)
        out["notes"] = [note_summary(n, kb) for n in log.notes(opened.record.id)]
        if opened.note is not None:
            out["note"] = opened.note.id
    return out


def printable(data: Any, chooser: Any, log: Any = None) -> str:
    """The review page (self-contained HTML) of the case as opened with the changes applied (a logged request's names its record)."""
    opened, result, decision = _changed(data, chooser, log)
    kb = _kb_of(chooser, decision)
    item = review_items([result.changed_case], [decision], chooser)[0]
    return render_report([replace(item, logged=_logged_lines(opened, result, kb))], kb, HTML)


def save_note(key: str, data: Any, chooser: Any, log: Any) -> Any:
    """Keep ``{"changes", "reviewer", "comment"}`` as a reviewer's note beside the logged request ``key`` (its number or id).

    The changes are applied to the logged case first, as the workbench
    applies them: a change that does not apply is refused (CaseError) and
    nothing is kept, so that every note can be re-applied. The note keeps the
    changes, who gave them (as given) and the decision they led to; the
    logged record is never altered. Returns the note kept.
    """
    from .whatif import what_if

    kb = chooser.default()
    w = kb.vocabulary.word
    if not isinstance(data, dict) or not isinstance(data.get("changes", []), list):
        raise CaseError("<request>", "", w("api_note_body"))
    extra = sorted(set(data) - set(NOTE_FIELDS))
    if extra:
        raise CaseError("<request>", extra[0], w("api_review_field", expected=", ".join(NOTE_FIELDS)))
    texts: dict[str, Optional[str]] = {}
    for name, limit in NOTE_TEXT_LIMITS.items():
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise CaseError("<request>", name, w("api_note_text", limit=limit))
        texts[name] = (value.strip() or None) if isinstance(value, str) else None
    changes = data.get("changes", [])
    if not changes and texts["comment"] is None:
        raise CaseError("<request>", "changes", w("api_note_empty"))
    record = logged_record(log, key, kb)
    result = what_if(record.case, change_list(changes), chooser)
    note = log.add_note(record.id, [c.to_dict() for c in result.changes], result.after.to_dict(), texts["reviewer"], texts["comment"])
    if note is None:  # pragma: no cover - a record is never deleted
        raise NotFound(w("api_no_decision", id=str(key)[:SHOWN_KEY]))
    return note


def _kb_of(chooser: Any, decision: Any) -> Any:
    """The version that decided (its words and criteria), or the default."""
    folder = decision.provenance.folder if decision.provenance is not None else None
    return next((version for version in chooser.versions() if folder is not None and version.folder == folder), chooser.default())


STYLE = (
    _STYLE
    + """
body { max-width: 100rem; }
@media screen and (min-width: 60rem) {
  main { display: grid; grid-template-columns: minmax(18rem, 2fr) 3fr; gap: 0 1.5rem; align-items: start; }
  .open { grid-column: 1 / -1; }
  .changes { grid-column: 1; grid-row: 2; }
  .review { grid-column: 2; grid-row: 2; }
}
header h1 { font-size: 1.4rem; }
form.change fieldset, #wb-open { border: 1px solid #bbb; padding: .5rem .8rem; margin: .5rem 0; }
label { display: block; margin-top: .4rem; font-weight: bold; }
textarea { width: 100%; box-sizing: border-box; font-family: monospace; }
select, input { max-width: 100%; }
fieldset { min-width: 0; }
button { margin: .5rem .5rem 0 0; padding: .3rem .8rem; }
button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #1a5fb4; outline-offset: 1px; }
.description { color: #333; font-size: .9rem; margin: .1rem 0; }
#wb-errors { color: #8b0000; }
#wb-notes > li { margin-bottom: .6rem; }
#wb-notes p { margin: .1rem 0; }
@media print { .open, .changes, #wb-status, header { display: none; } }
""".strip()
    + "\n"
)

SCRIPT = r"""'use strict';
(function () {
  const data = JSON.parse(document.getElementById('wb-data').textContent);
  const words = data.words;
  const state = { opened: null, logged: null, changes: [], answer: null };
  const $ = (id) => document.getElementById(id);

  function text(el, value) { el.textContent = value; return el; }
  function showErrors(lines) {
    const box = $('wb-errors');
    box.replaceChildren();
    if (!lines || !lines.length) { return; }
    box.appendChild(text(document.createElement('p'), words.wb_failed));
    const list = document.createElement('ul');
    for (const line of lines) { list.appendChild(text(document.createElement('li'), line)); }
    box.appendChild(list);
  }
  async function send(path, body) {
    const response = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const type = response.headers.get('content-type') || '';
    const answer = type.includes('json') ? await response.json() : await response.text();
    if (!response.ok) { throw answer && answer.errors ? answer.errors : [String(response.status)]; }
    return answer;
  }
  // a request opened from the decision log is named by its record, and the server reads its case from the log
  function post(path, changes) { return send(path, state.logged ? { logged: state.logged, changes: changes } : { case: state.opened, changes: changes }); }
  async function decide(changes) {
    text($('wb-status'), words.wb_working);
    try {
      const answer = await post('/review/decide', changes);
      state.changes = changes;
      state.answer = answer;
      showErrors([]);
      render();
      return true;
    } catch (lines) {
      showErrors(Array.isArray(lines) ? lines : [String(lines)]);
      text($('wb-status'), '');
      return false;
    }
  }
  function describe(change) {
    return change.op + ' ' + change.path + (change.value === undefined ? '' : ' ' + JSON.stringify(change.value));
  }
  function render() {
    const answer = state.answer;
    $('wb-changes').hidden = false;
    $('wb-review').innerHTML = answer.section;  // made by the server, every string escaped there
    text($('wb-status'), answer.verdict);
    const list = $('wb-change-list');
    list.replaceChildren();
    for (const change of state.changes) { list.appendChild(text(document.createElement('li'), describe(change))); }
    $('wb-no-changes').hidden = state.changes.length > 0;
    $('wb-undo').disabled = state.changes.length === 0;
    for (const select of document.querySelectorAll('form.change select[name=item]')) {
      const field = select.closest('form').dataset.field;
      const items = answer.case[field] || [];
      select.replaceChildren();
      items.forEach((item, n) => {
        const option = document.createElement('option');
        option.value = select.dataset.entries === 'true' ? String(n) : JSON.stringify(item);
        text(option, select.dataset.entries === 'true' ? Object.entries(item).map(([k, v]) => k + ': ' + v).join(', ') : String(item));
        select.appendChild(option);
      });
      select.closest('fieldset').disabled = items.length === 0;
    }
    const logged = answer.logged;
    $('wb-logged').hidden = !logged;
    $('wb-log-part').hidden = !logged;
    text($('wb-logged'), logged ? logged.line : '');
    const notes = $('wb-notes');
    notes.replaceChildren();
    (answer.notes || []).forEach((note, n) => {
      const item = document.createElement('li');
      const line = text(document.createElement('p'), note.line);
      line.id = 'wb-note-' + n;
      item.appendChild(line);
      if (note.comment) { item.appendChild(text(document.createElement('p'), note.comment)); }
      const changes = document.createElement('ul');
      for (const change of note.changes) { changes.appendChild(text(document.createElement('li'), describe(change))); }
      item.appendChild(changes);
      const again = text(document.createElement('button'), words.wb_reapply_button);
      again.type = 'button';
      again.setAttribute('aria-describedby', line.id);
      again.addEventListener('click', () => decide(note.changes.slice()));
      item.appendChild(again);
      notes.appendChild(item);
    });
    $('wb-no-notes').hidden = (answer.notes || []).length > 0;
  }
  function value(control) {
    const raw = control.value.trim();
    if (raw === '') { return undefined; }
    const kind = control.dataset.kind;
    if (kind === 'integer') { return Number.parseInt(raw, 10); }
    if (kind === 'boolean') { return raw === 'true'; }
    return raw;
  }
  function changeOf(form) {
    const op = form.dataset.op;
    const field = form.dataset.field;
    if (op === 'remove') {
      const select = form.querySelector('select[name=item]');
      return select.dataset.entries === 'true' ? { op: 'remove', path: field + '[' + select.value + ']' } : { op: 'remove', path: field, value: JSON.parse(select.value) };
    }
    const controls = Array.from(form.querySelectorAll('input, select'));
    if (form.dataset.entries === 'true') {
      const entry = {};
      for (const control of controls) {
        const v = value(control);
        if (v !== undefined) { entry[control.name] = v; }
      }
      return { op: op, path: field, value: entry };
    }
    const single = value(controls[0]);
    return { op: op, path: field, value: single === undefined ? null : single };
  }
  function read(file) {
    return new Promise((resolve, reject) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.onerror = () => reject(r.error); r.readAsText(file); });
  }
  function download(name, type, body) {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([body], { type: type }));
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
  }
  $('wb-open').addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = $('wb-file').files[0];
    const source = file ? await read(file) : $('wb-case').value;
    let parsed;
    try { parsed = JSON.parse(source); } catch (error) { showErrors([String(error.message)]); return; }
    const before = [state.opened, state.logged];
    state.opened = parsed;
    state.logged = null;
    if (!(await decide([]))) { [state.opened, state.logged] = before; }
  });
  $('wb-open-logged').addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = $('wb-number').value.trim();
    if (!key) { return; }
    const before = [state.opened, state.logged];
    state.logged = key;
    if (await decide([])) {
      state.logged = state.answer.logged.id;
      state.opened = state.answer.case;  // the case as logged, for the download
      text($('wb-save-status'), '');
    } else {
      [state.opened, state.logged] = before;
    }
  });
  $('wb-save').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!state.logged) { return; }
    try {
      await send('/decisions/' + encodeURIComponent(state.logged) + '/notes', { changes: state.changes, reviewer: $('wb-reviewer').value, comment: $('wb-comment').value });
    } catch (lines) {
      showErrors(Array.isArray(lines) ? lines : [String(lines)]);
      return;
    }
    $('wb-comment').value = '';
    if (await decide(state.changes)) { text($('wb-save-status'), words.wb_saved); }
  });
  for (const form of document.querySelectorAll('form.change')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!state.opened) { return; }
      if (await decide(state.changes.concat([changeOf(form)]))) { form.reset(); }
    });
  }
  $('wb-undo').addEventListener('click', () => { if (state.changes.length) { decide(state.changes.slice(0, -1)); } });
  $('wb-download').addEventListener('click', () => download('changes.json', 'application/json', JSON.stringify({ case: state.opened, changes: state.changes }, null, 2) + '\n'));
  $('wb-page').addEventListener('click', async () => {
    try { download('review.html', 'text/html', await post('/review/page', state.changes)); } catch (lines) { showErrors(Array.isArray(lines) ? lines : [String(lines)]); }
  });
  $('wb-print').addEventListener('click', () => window.print());
  document.body.dataset.ready = 'true';
})();
"""
"""The workbench's script: no library, no build step; words from the page's data block, answers from the server."""
