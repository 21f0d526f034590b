"""The console sessions docs/authoring.md shows, read as the tests that replay them need them."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "authoring.md"


def console_steps(title: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the code blocks of the guide's section ``title``, with the output lines shown under it."""
    text = GUIDE.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else len(text)]
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```\n(.*?)```", section, re.S):
        current = None
        for line in block.splitlines():
            if line.startswith("$ "):
                current = (line[2:], [])
                steps.append(current)
            elif current is not None:
                current[1].append(line)
    return steps
