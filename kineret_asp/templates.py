"""Word templates filled with values: the one place a ``{placeholder}`` is replaced.

The KB writes every word the program prints as a template (text/2 and the
like): ``{name}`` marks a value, ``{?...}`` a part left out when a value in
it is not given. Values go in as one line each
(:func:`~kineret_asp.safetext.safe_text`), so no value can start a line of
its own or fake one.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from .safetext import safe_text


def fill(template: str, values: dict[str, Any]) -> str:
    """Fill ``{name}`` placeholders; an unknown name is left as written.

    A value is put in as one line (:func:`~kineret_asp.safetext.safe_text`):
    a case id or a file name can never start a line of its own.
    """
    out = []
    i = 0
    while i < len(template):
        start = template.find("{", i)
        if start < 0:
            out.append(template[i:])
            break
        end = template.find("}", start)
        if end < 0:
            out.append(template[i:])
            break
        out.append(template[i:start])
        name = template[start + 1 : end]
        out.append(safe_text(values[name]) if name in values else template[start : end + 1])
        i = end + 1
    return "".join(out)


PLACEHOLDER = re.compile(r"\{(\w+)\}")
OPTIONAL = re.compile(r"\{\?((?:[^{}]|\{\w+\})*)\}")


def optional_fill(template: str, values: Mapping[str, str]) -> str:
    """Fill {name} placeholders; a {?...} part is left out when a value in it is not given."""

    def part(m: re.Match) -> str:
        inner = m.group(1)
        return fill(inner, dict(values)) if all(n in values for n in PLACEHOLDER.findall(inner)) else ""

    return fill(OPTIONAL.sub(part, template), dict(values))


def placeholders(template: str) -> list[str]:
    """Every ``{name}`` a template fills, those inside ``{?...}`` parts included, in order."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))
