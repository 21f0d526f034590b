"""The documentation stays true: the KB's file table, the package's modules and layers, the README's commands, every link.

Each test reads the tree (the KB's files, the package's modules, the CLI's
commands, pyproject.toml's import contract) and fails naming what a page
lacks or names wrongly, so that moving a file tells which line to write.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from .conftest import KB_DIR, ROOT, cli

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
        assert rel.parts[-len(named) :] == named, f"kb/{rel}: its header names {header[0]}"


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


def test_the_readme_and_the_architecture_link_to_the_one_kb_table():
    for page in (README, ARCHITECTURE):
        text = page.read_text(encoding="utf-8")
        assert "authoring.md#layout" in text, f"{page.name} does not link to the KB's file table"
        listed = [cells[0] for cells in table_rows(text) if cells[0].strip("`").endswith(".lp")]
        assert not listed, f"{page.name} lists KB files itself: {listed}"


# --- the package: every module, by layer ---------------------------------------------------------


def package_modules() -> set[str]:
    """Every module of the package, relative to kineret_asp/, its __init__ files aside."""
    return {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" and "__pycache__" not in p.parts}


def subpackages() -> list[Path]:
    return sorted(p.parent for p in PACKAGE.glob("*/__init__.py"))


def documented_modules() -> dict[str, str]:
    """The architecture page's module tables: module path -> the '### ' layer heading it stands under."""
    part = section(ARCHITECTURE.read_text(encoding="utf-8"), "## The package")
    found: dict[str, str] = {}
    layer = None
    for line in part.splitlines():
        if line.startswith("### "):
            layer = line[4:].strip()
        elif line.startswith("| `"):
            path = table_rows(line)[0][0].strip("`")
            assert path not in found, f"docs/architecture.md lists {path} twice"
            found[path] = layer
    return found


def test_the_architecture_lists_every_module_of_the_package():
    modules, documented = package_modules(), documented_modules()
    assert len(modules) > 40
    missing = sorted(modules - set(documented))
    assert not missing, "modules missing from docs/architecture.md (## The package), one line each: " + ", ".join(missing)
    gone = sorted(set(documented) - modules)
    assert not gone, "docs/architecture.md lists modules the package does not have: " + ", ".join(gone)


def test_the_architecture_gives_each_subpackage_its_stated_purpose():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    for folder in subpackages():
        purpose = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert purpose and "\n" not in purpose, f"kineret_asp/{folder.name}/__init__.py has no one-line purpose"
        assert f"*{purpose}*" in text, f"docs/architecture.md does not state the purpose of {folder.name}/: {purpose!r}"


def diagram() -> list[str]:
    """The layer diagram of docs/architecture.md, top first: one line per layer."""
    part = section(ARCHITECTURE.read_text(encoding="utf-8"), "## The layers")
    blocks = re.findall(r"```\n(.*?)```", part, re.S)
    assert len(blocks) == 1, "## The layers should draw the stack in one code block"
    return [" ".join(line.split()) for line in blocks[0].splitlines() if line.strip()]


def members(layer: str) -> list[str]:
    return [m.strip() for m in re.split(r"[|:]", layer)]


def test_every_top_level_module_stands_in_one_layer_of_the_diagram():
    tops = {p.stem for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")} | {p.name for p in subpackages()}
    drawn = [m for layer in diagram() for m in members(layer)]
    assert sorted(drawn) == sorted(set(drawn)), "a module stands in two layers of the diagram"
    assert set(drawn) == tops, f"drawn but absent: {sorted(set(drawn) - tops)}; absent from the diagram: {sorted(tops - set(drawn))}"


def test_each_module_is_listed_under_its_layer():
    layers = diagram()
    documented = documented_modules()
    assert list(dict.fromkeys(documented.values())) == layers, "the ### headings of ## The package are not the diagram's layers, in its order"
    for path, layer in documented.items():
        top = Path(path).parts[0].removesuffix(".py")
        top = "cli" if top == "__main__" else top  # `python -m kineret_asp` is the command line
        assert top in members(layer), f"{path} is listed under {layer!r}"


def import_contract() -> list[str] | None:
    """The layers of pyproject.toml's import-linter contract, top first, the package prefix taken off."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config.get("tool", {}).get("importlinter", {}).get("contracts", [])
    layered = [c for c in contracts if c.get("type") == "layers" and not c.get("containers")]
    if not layered:
        return None
    assert len(layered) == 1, "more than one layers contract over the whole package: the diagram draws one"
    root = config["tool"]["importlinter"]["root_package"] + "."
    return [" ".join(layer.replace(root, "").split()) for layer in layered[0]["layers"]]


def test_the_layer_diagram_is_the_import_contract():
    layers = import_contract()
    if layers is None:
        pytest.skip("pyproject.toml declares no import-linter layers contract to compare the diagram with")
    assert diagram() == layers


# --- the README: a front door --------------------------------------------------------------------


def test_the_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = ci.split("# --- the README's test command, verbatim ---\n", 1)[1].splitlines()[0]
    assert f"```sh\n{test_command}\n```" in text, "the README's test command is not the one .ci/run runs"
    assert re.search(r"```sh\npython3 -m venv \.venv && \.venv/bin/pip install -q \. && \.venv/bin/kineret-asp evaluate facts/\S+\.json\n```", text)
    for title in ("## Start here", "## Commands", "## Exit codes"):
        assert f"\n{title}\n" in text, f"the README has no section {title!r}"


def test_the_readme_example_command_decides_its_example():
    case = re.search(r"\.venv/bin/kineret-asp evaluate (facts/\S+\.json)", README.read_text(encoding="utf-8")).group(1)
    result = cli("evaluate", case)
    assert result.returncode == 0 and "Decision: " in result.stdout, result.stderr


def test_the_readme_command_table_is_the_cli():
    from kineret_asp.cli import main

    rows = table_rows(section(README.read_text(encoding="utf-8"), "## Commands"))
    listed = [re.fullmatch(r"`kineret-asp ([a-z-]+)[^`]*`", cells[0]).group(1) for cells in rows]
    assert sorted(listed) == sorted(set(listed)), "a command has two rows"
    assert set(listed) == set(main.commands), f"missing: {sorted(set(main.commands) - set(listed))}; not a command: {sorted(set(listed) - set(main.commands))}"


def test_the_readme_exit_codes_are_those_the_commands_use():
    from kineret_asp.cli import EXIT_FAILED, EXIT_INPUT, EXIT_LIMIT

    text = section(README.read_text(encoding="utf-8"), "## Exit codes")
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", text, re.M)}
    assert codes == {0, EXIT_FAILED, EXIT_INPUT, EXIT_LIMIT, 130}  # 130: interrupted, as a shell reports Ctrl-C


# --- the pages: an index, and links that lead somewhere ------------------------------------------


def test_the_docs_index_lists_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([a-z0-9-]+\.md)\)", index))
    pages = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    assert linked == pages, f"unlisted: {sorted(pages - linked)}; listed but absent: {sorted(linked - pages)}"
    assert "docs/README.md" in README.read_text(encoding="utf-8")


def slug(heading: str) -> str:
    """The anchor a Markdown heading gets on GitHub."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    found: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        base, n = slug(heading), 0
        while (base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_the_slug_is_githubs():
    assert slug("Batch, evaluate, memory: `python bench/batch_bench.py`") == "batch-evaluate-memory-python-benchbatch_benchpy"
    assert slug("A KB is code: what the loader reads, and what it refuses") == "a-kb-is-code-what-the-loader-reads-and-what-it-refuses"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_of_a_page_leads_somewhere(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.relative_to(ROOT)}: link to {target}, which does not exist"
        if anchor:
            assert path.is_file() and anchor in anchors(path), f"{page.relative_to(ROOT)}: link to {target}: no such heading"


# --- what the pages show, run ---------------------------------------------------------------------


SHOWN = re.compile(r"^(\S.*?)\s+# ('[^']*'|\([^)]*\)|True|False)(?:\W|$)")


def test_the_python_api_page_runs_as_shown(monkeypatch):
    """Every Python block of docs/python-api.md runs; a line commented with a value gives that value."""
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "python-api.md").read_text(encoding="utf-8"), re.S)
    checked = 0
    for block in blocks:
        lines = []
        for line in block.splitlines():
            shown = SHOWN.match(line)
            if shown and not re.match(r"(for|from|import) |\w+ = ", line):
                lines.append(f"assert ({shown.group(1)}) == {shown.group(2)}, {line!r}")
                checked += 1
            else:
                lines.append(line)
        code = "\n".join(lines).replace('"path/to/kb-copy"', repr(str(KB_DIR)))  # any KB folder: the packaged one
        exec(compile(code, "docs/python-api.md", "exec"), {})
    assert checked >= 5


def test_the_python_api_page_names_every_public_name():
    import kineret_asp

    rows = table_rows(section((DOCS / "python-api.md").read_text(encoding="utf-8"), "## The public names"))
    named = {name for cells in rows for name in re.findall(r"`(\w+)`", cells[0])}
    assert named == set(kineret_asp.__all__), f"unnamed: {sorted(set(kineret_asp.__all__) - named)}; not public: {sorted(named - set(kineret_asp.__all__))}"


def test_the_bench_page_names_every_script():
    rows = table_rows((ROOT / "bench" / "README.md").read_text(encoding="utf-8"))
    listed = {cells[0].strip("`") for cells in rows}
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")}
    assert scripts <= listed, f"bench/README.md does not name {sorted(scripts - listed)}"


def test_the_tests_mirror_the_packages():
    """Each folder of tests/ with test files is named after a subpackage (contracts/ and data/ hold the records and the data)."""
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    folders = {p.parent.name for p in (ROOT / "tests").glob("*/test_*.py")} - {"contracts"}
    assert folders <= subpackages, f"test folders that name no subpackage: {sorted(folders - subpackages)}"
    assert len(folders) >= 8  # the tests are spread over the layers, not kept on one shelf


def test_every_test_file_a_page_names_exists():
    pages = [ROOT / "README.md", ROOT / "bench" / "README.md", *DOCS.glob("*.md")]
    named = {(page.name, m) for page in pages for m in re.findall(r"tests/[\w/]+\.py", page.read_text(encoding="utf-8"))}
    assert named, "no page names a test file"
    missing = sorted(f"{page}: {path}" for page, path in named if not (ROOT / path).is_file())
    assert not missing, missing
