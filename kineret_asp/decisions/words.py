"""A case's values in the KB's words: the entries of a list by their templates, any other value by its label.

The KB writes the words a reviewer reads as templates: ``{name}`` marks a
value, ``{?...}`` a part left out when a value in it is not given (an
entry's months, what it was taken for). A decision's evidence and a
what-is-missing answer both name a case fact in the same words: an entry of
a list by the KB's ``entry_text/2`` template for that list, any other value
by its label. This module is the one place that does it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

from ..templates import optional_fill

if TYPE_CHECKING:  # pragma: no cover
    from ..knowledge.base import KnowledgeBase
    from ..knowledge.schema import CaseSchema, Field


def entry_templates(kb: "KnowledgeBase") -> dict[str, str]:
    """The KB's words for an entry of each entries list (entry_text/2)."""
    return kb.derived("entry_templates", lambda: {str(f): str(t) for f, t in kb.facts("entry_text", 2)})


def entry_words(schema: "CaseSchema", templates: Mapping[str, str], list_field: "Field", entry: Any, label: Optional[Any] = None) -> str:
    """An entry in the KB's words: its list's entry_text/2 filled with the labels of its values.

    ``label(kind, value)`` gives a value's words (the schema's labels by
    default). Without a template the entry's values are listed in the
    order the KB declares its fields.
    """
    words = label or schema.value_label
    given = {e.name: words(e.kind, entry[e.name]) for e in list_field.entry_fields if entry[e.name] is not None and entry[e.name] is not False}
    template = templates.get(list_field.name)
    if template is None:
        return " ".join(given[e.name] for e in list_field.entry_fields if e.name in given)
    return optional_fill(template, given)
