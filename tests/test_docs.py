"""The documentation stays true: the KB's file table, the package's modules and layers, the README's commands, every link.

Each test reads the tree (the KB's files, the package's modules, the CLI's
commands, pyproject.toml's import contract) and fails naming what a page
lacks or names wrongly, so that moving a file tells which line to write.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import KB_DIR, ROOT

DOCS = ROOT / "docs"
PACKAGE = ROOT / "kineret_asp"
GUIDE = DOCS / "authoring.md"
ARCHITECTURE = DOCS / "architecture.md"
README = ROOT / "README.md"
PAGES = [README, ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]

RULE = re.compile(r"% =+")
HEADER = re.compile(r"% (\S+) - (.+)")


def section(text: str, title: str) -> str:
    """The text of the section headed exactly `title` (a '## ' line), up to the next heading of its level."""
    assert f"\n{title}\n" in f"\n{text}", f"no section {title!r}"
    rest = f"\n{text}".split(f"\n{title}\n", 1)[1]
    return re.split(r"\n## ", rest, maxsplit=1)[0]


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row of a Markdown text, header and rule rows left out; `\\|` is a pipe inside a cell."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or re.fullmatch(r"\|[-| ]+\|", line):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        rows.append(cells)
    return [r for r in rows if r[0].startswith("`")]


# --- the KB's files: one table, checked against each file's header -------------------------------


def kb_rule_files() -> list[Path]:
    """Every .lp file of the KB tree but the example cases, relative to kb/."""
    return sorted(p.relative_to(KB_DIR) for p in KB_DIR.rglob("*.lp") if "cases" not in p.relative_to(KB_DIR).parts)


def header_of(path: Path) -> tuple[str, str] | None:
    """A KB file's header: its first line a rule of '=', then '% <path> - <description>', continued to the paragraph's end."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or not RULE.fullmatch(lines[0]):
        return None
    match = HEADER.fullmatch(lines[1])
    if match is None:
        return None
    words = [match.group(2).strip()]
    for line in lines[2:]:
        if line == "%" or RULE.fullmatch(line) or not line.startswith("% "):
            break
        words.append(line[2:].strip())
    return match.group(1), " ".join(words)


def test_the_header_reader_reads_a_header_to_its_paragraph_end(tmp_path):
    path = tmp_path / "x.lp"
    path.write_text("% ====\n% codes/x.lp - one thing,\n% and another\n%\n% more\n", encoding="utf-8")
    assert header_of(path) == ("codes/x.lp", "one thing, and another")
    path.write_text("% ====\n% codes/x.lp - one thing\n% ====\nfact.\n", encoding="utf-8")
    assert header_of(path) == ("codes/x.lp", "one thing")
    path.write_text("% codes/x.lp - no rule above\n", encoding="utf-8")
    assert header_of(path) is None


def test_every_kb_file_opens_with_a_header_that_names_it():
    files = kb_rule_files()
    assert len(files) > 20
    for rel in files:
        header = header_of(KB_DIR / rel)
        assert header is not None, f"kb/{rel} does not open with a '% <path> - <description>' header under a rule of '='"
        named = Path(header[0]).parts
        assert rel.parts[-len(named):] == named, f"kb/{rel}: its header names {header[0]}"


def kb_table() -> dict[str, str]:
    """The authoring guide's table of the KB's files: path (relative to kb/) -> description."""
    rows = table_rows(section(GUIDE.read_text(encoding="utf-8"), "## Layout"))
    table: dict[str, str] = {}
    for cells in rows:
        path = cells[0].strip("`")
        assert path not in table, f"docs/authoring.md lists {path} twice"
        table[path] = cells[1]
    return table


def test_the_kb_file_table_is_the_files_headers():
    """One row per rule file, with its header's words; a row that ends in '/' names a folder that holds no rules."""
    table = kb_table()
    files = {str(rel): header_of(KB_DIR / rel)[1] for rel in kb_rule_files()}
    missing = sorted(set(files) - {p for p in table if not p.endswith("/")})
    assert not missing, "files of kb/ missing from the table of docs/authoring.md (## Layout): " + ", ".join(missing)
    for path, description in table.items():
        if path.endswith("/"):
            assert (KB_DIR / path).is_dir(), f"docs/authoring.md lists the folder kb/{path}, which does not exist"
            continue
        assert path in files, f"docs/authoring.md lists kb/{path}, which is not a rule file of the KB"
        assert description == files[path], f"kb/{path}: the table says {description!r}, its header {files[path]!r}"
