"""Which values the package fills each word template with, read from the package's own source.

``check`` uses it to find a ``{placeholder}`` nothing fills: such a word
would be printed as written.
"""

from __future__ import annotations

from typing import Any, Optional

_FILLED: list[dict[str, set[str]]] = []  # [exact keys, f-string prefixes, keys filled some unknown way (**values)]


def filled_by_the_program(key: str) -> Optional[frozenset[str]]:
    """The values the package fills a word key (text/2) with, read from the package's own source; None when unknown.

    Every place that fills a KB word passes its key as the first argument
    and its values by name (``w("missing_case", id=..., decision=...)``);
    a key chosen among literals (``"addition" if n == 1 else "additions"``)
    or built from a literal prefix (``f"chosen_by_{how}"``) counts for each
    key it can be. The answer is the union over every place that fills the
    key; a key no place names, or one filled with ``**values``, is unknown.
    """
    if not _FILLED:
        _FILLED.extend(_scanned())
    exact, prefixes, spread = _FILLED
    if key in spread or any(key.startswith(p) for p in prefixes if p in spread):
        return None
    hits = [names for k, names in exact.items() if k == key] + [names for p, names in prefixes.items() if key.startswith(p)]
    return frozenset().union(*hits) if hits else None


def _scanned() -> list[dict[str, set[str]]]:
    """The package's scan, kept in the derived-program cache: its entries are named by the package's code digest.

    Reading every module's syntax tree costs about two seconds, paid by each
    ``check`` process otherwise; an authenticated cache entry is read in
    milliseconds and is used only by the same code that wrote it.
    """
    import json

    from ..knowledge.diskcache import cached_text

    def compute() -> str:
        return json.dumps([{k: sorted(v) for k, v in table.items()} for table in _scan_package()], sort_keys=True)

    return [{k: set(v) for k, v in table.items()} for table in json.loads(cached_text("words-filled", "package", compute))]


def _scan_package() -> list[dict[str, set[str]]]:
    import ast as pyast
    from pathlib import Path

    exact: dict[str, set[str]] = {}
    prefixes: dict[str, set[str]] = {}
    spread: dict[str, set[str]] = {}
    for path in sorted(Path(__file__).resolve().parent.parent.rglob("*.py")):  # the whole package
        try:
            tree = pyast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in pyast.walk(tree):
            if not isinstance(node, pyast.Call) or not node.args:
                continue
            literals, starts = _key_literals(node.args[0])
            names = {k.arg for k in node.keywords if k.arg is not None}
            unknown = any(k.arg is None for k in node.keywords)
            for key in literals:
                exact.setdefault(key, set()).update(names)
                if unknown:
                    spread[key] = set()
            for prefix in starts:
                prefixes.setdefault(prefix, set()).update(names)
                if unknown:
                    spread[prefix] = set()
    return [exact, prefixes, spread]


def _key_literals(node: Any) -> tuple[list[str], list[str]]:
    """The string literals a call's first argument can be, and the literal prefixes of f-strings it can be."""
    import ast as pyast

    if isinstance(node, pyast.Constant) and isinstance(node.value, str):
        return [node.value], []
    if isinstance(node, pyast.IfExp):
        a, pa = _key_literals(node.body)
        b, pb = _key_literals(node.orelse)
        return a + b, pa + pb
    if isinstance(node, pyast.JoinedStr) and node.values and isinstance(node.values[0], pyast.Constant) and isinstance(node.values[0].value, str) and node.values[0].value:
        return [], [node.values[0].value]
    return [], []
