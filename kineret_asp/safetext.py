"""Printing user-supplied strings safely: no value can break or fake a line.

A case id, a file name or a gene name comes from whoever wrote the case. Put
raw into a reviewer's text, a control character or a Unicode line separator
in it starts a new line, and a new line can carry a fake verdict
(``Decision: APPROVED ...``) above the real one. Every renderer passes such
values through one of these functions:

- :func:`safe_text` for plain text (the decision, what-if, missing, error lines);
- :func:`safe_markdown` and :func:`safe_html` for the Markdown and HTML reports;
- :func:`safe_json` for JSON text written with ``ensure_ascii=False``, which
  leaves U+2028, U+2029 and the C1 controls raw: a reader that splits on
  Unicode line breaks would see one record as several.

What is escaped: every character of the Unicode categories Cc (controls,
tab and line feed included), Cf (format characters: bidirectional
overrides, zero-width characters), Zl and Zp (line and paragraph
separators), written as a Python-style escape (``\\n``, ``\\x85``,
``\\u2028``) so that the reader still sees that it was there. Printable text,
spaces included, is left as it is.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from typing import Any

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# the characters that start Markdown markup inside a line: emphasis, code,
# links and images, raw HTML, headings, tables, strikethrough
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~!])")
# what starts an autolink in GitHub-flavoured Markdown: the colon of scheme://, the dot after www
_AUTOLINK = re.compile(r"(?i)(?<=\bwww)\.|:(?=//)")


def is_unsafe(char: str) -> bool:
    """Whether a character can break, hide or fake a line when printed."""
    return unicodedata.category(char) in UNSAFE_CATEGORIES


def escape_char(char: str) -> str:
    """The visible escape of one character (``\\n``, ``\\x1b``, ``\\u2028``, ``\\U000e0001``)."""
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_text(value: Any) -> str:
    """``value`` as one line of plain text: unsafe characters escaped, the rest as given."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the fast path: no control, format or separator character
        return text
    return "".join(escape_char(c) if is_unsafe(c) else c for c in text)


def safe_markdown(value: Any) -> str:
    """``value`` for Markdown: one line, and no character Markdown would read as markup.

    URLs are no links either: GitHub-flavoured Markdown makes a link of any
    ``scheme://...`` and ``www.`` in plain text (an autolink), so the ``:``
    of ``://`` and the dot after ``www`` are escaped too (they show as written).
    """
    return _AUTOLINK.sub(lambda m: "\\" + m.group(0), _MARKDOWN_SPECIAL.sub(r"\\\1", safe_text(value)))


def safe_html(value: Any) -> str:
    """``value`` for HTML text or a quoted attribute: one line, markup characters escaped."""
    return html.escape(safe_text(value), quote=True)


# Characters json.dumps(ensure_ascii=False) leaves raw that are not printable
# text: DEL, the C1 controls (U+0085 is a line break to many readers), and
# every Cf, Zl and Zp character (Unicode 15). Escaping them is lossless: a
# JSON reader gets the same string back.
_JSON_UNSAFE = re.compile(
    "[\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)


def _json_escape(match: "re.Match[str]") -> str:
    code = ord(match.group(0))
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the Basic Multilingual Plane JSON needs a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_json(text: str) -> str:
    """JSON text with every raw separator, control and format character escaped.

    Only valid on the output of ``json.dumps``: the characters it matches can
    occur there only inside strings, where ``\\uXXXX`` means the same.
    """
    if text.isprintable():  # the fast path (one JSON line): nothing to escape
        return text
    return _JSON_UNSAFE.sub(_json_escape, text)


def dumps(data: Any, indent: "int | None" = 2, separators: "tuple[str, str] | None" = None) -> str:
    """``json.dumps`` with readable Unicode and every unsafe character escaped."""
    return safe_json(json.dumps(data, indent=indent, ensure_ascii=False, separators=separators))
