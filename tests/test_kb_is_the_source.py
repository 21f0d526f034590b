"""A policy change is a kb/ change only: new keys and criteria work without Python edits."""

from __future__ import annotations

import pytest

from kineret_asp import evaluate, load_kb
from kineret_asp.author.check import check_kb
from kineret_asp.explain.missing import missing

from .conftest import add_newmab, revise_source


def append(path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


@pytest.mark.slow
def test_a_new_biologic_is_known_to_cases_and_to_nc2(kb_copy):
    assert "newmab" not in load_kb(kb_copy).vocabulary.keys["drug"]
    add_newmab(kb_copy)
    assert check_kb(kb_copy).errors == 0
    d = evaluate({"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["newmab"]}, kb_copy)
    assert d.decision == "not_covered" and d.reasons[0].details == {"current_medications": ["newmab"]}


@pytest.mark.slow
def test_a_new_indication_with_its_criteria(kb_copy):
    sjia = "- 5. Systemic Juvenile Idiopathic Arthritis (SJIA).** The medication is prescribed by, or in consultation with, a rheumatologist.\n"
    revise_source(kb_copy, sjia, sjia + "- 6. Gout.** The medication is prescribed by, or in consultation with, a rheumatologist.\n")
    append(kb_copy / "vocabulary.lp", '% § 6 - a new covered condition\nindication(gout, "Gout").')
    (kb_copy / "criteria" / "6_gout.lp").write_text(
        "% § 6 - the criterion, in the policy's words.\n"
        'criterion("6", none, leaf, "Gout. The medication is prescribed by, or in consultation with, a rheumatologist.").\n\n'
        "% § 6 - a request for gout is decided by criterion 6.\n"
        'indication_criteria(gout, "6").\n\n'
        '% § 6 - "prescribed by, or in consultation with, a rheumatologist".\n'
        'accepted_specialty("6", rheumatology).\n'
    )
    assert check_kb(kb_copy).errors == 0
    approved = evaluate({"indication": "gout", "prescriber_specialties": ["rheumatology"]}, kb_copy)
    assert approved.decision == "approved" and approved.criteria[0].text.startswith("Gout.")
    unmet = evaluate({"indication": "gout"}, kb_copy)
    assert unmet.unmet == ("6",)
    options = missing({"indication": "gout"}, kb_copy)
    assert options.status == "options" and "a rheumatologist" in options.options[0].text


@pytest.mark.slow
def test_a_new_effective_date_reaches_every_decision(kb_copy):
    path = kb_copy / "policy.lp"
    path.write_text(path.read_text().replace('effective_from("2024-06-01").', 'effective_from("2025-01-15").'))
    assert evaluate({"indication": "sjia"}, kb_copy).effective_date == "2025-01-15"


def _python_literals():
    """Every string literal of the package's modules, docstrings aside, with where it is."""
    import ast as pyast

    from .conftest import ROOT

    for path in sorted((ROOT / "kineret_asp").rglob("*.py")):
        tree = pyast.parse(path.read_text(encoding="utf-8"))
        docs = {
            id(n.body[0].value)
            for n in pyast.walk(tree)
            if isinstance(n, (pyast.Module, pyast.FunctionDef, pyast.AsyncFunctionDef, pyast.ClassDef)) and n.body and isinstance(n.body[0], pyast.Expr) and isinstance(n.body[0].value, pyast.Constant)
        }
        for n in pyast.walk(tree):
            if isinstance(n, pyast.Constant) and isinstance(n.value, str) and id(n) not in docs:
                yield f"{path.name}:{n.lineno}", n.value


@pytest.mark.slow
def test_no_python_literal_names_a_key_an_id_or_a_word_of_the_policy():
    """Drug, indication and specialty keys, criterion and reason ids, the policy's number and words live in kb/ only."""
    import re

    kb = load_kb()
    v = kb.vocabulary
    keys = set()
    for vocabulary in ("drug", "indication", "specialty", "product"):
        keys |= set(v.keys[vocabulary])
    ids = {i for i in [*v.criteria, *v.reason_texts] if len(i) > 1}  # "3.A.ii", "NC.2", "R.B" (a lone digit is any number)
    labels = {label for vocabulary in ("drug", "indication", "specialty") for label in v.keys[vocabulary].values()}
    words = {v.policy_id, v.title, *labels}
    package = re.compile(r"kineret[-_]asp", re.I)
    hits = []
    for where, text in _python_literals():
        bare = package.sub("", text)  # the program's own name is not the policy's word
        tokens = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare)) | set(re.findall(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)+", bare))
        bare = bare.lower()
        found = (tokens & keys) | (tokens & ids) | {w for w in words if len(w) > 3 and re.search(rf"\b{re.escape(w.lower())}\b", bare)}
        if re.search(rf"\b{re.escape(v.drug_name.lower())}\b", bare):
            found.add(v.drug_name)
        if found:
            hits.append((where, sorted(found)))
    assert keys and ids and words and not hits


# The modules whose every printed word is read from the KB: check's findings
# (framework/words/check.lp) and the modules that already held no sentence.
# Most other modules still write some messages in Python (errors about cases
# and files, the CLI's help): each joins this list once its words have moved.
SPEAKS_THE_KBS_WORDS = (
    "author/check.py",
    "author/readjudicate.py",
    "author/trace_page.py",
    "author/words_filled.py",
    "batch/distributed.py",
    "cases/caps.py",
    "decisions/words.py",
    "engine/symmetry.py",
    "explain/whatif.py",
    "interop/crd.py",
    "interop/dtr.py",
    "interop/operation_outcome.py",
    "interop/prefetch.py",
    "knowledge/parse_record.py",
    "safetext.py",
    "templates.py",
    "web/guard.py",
)
SENTENCE_WORDS = 4  # "is used but never" is a sentence; "table fact", "kineret-asp-check-" are not


def _sentences(path):
    """The string literals of a module that read as a sentence (four plain words or more): words the module prints of its own.

    Docstrings are not printed; a literal an ``in`` test looks for in
    someone else's text (clingo's ``does not occur in any rule head``) is
    read, not printed; nor is the error ``check`` raises when not even the
    packaged KB has its words (``CheckWordsError``: there is no KB to read
    them from).
    """
    import ast as pyast
    import re

    word = re.compile(r"^[A-Za-z]+[,.:;!?]?$")
    tree = pyast.parse(path.read_text(encoding="utf-8"))
    skip = set()
    for n in pyast.walk(tree):
        if isinstance(n, (pyast.Module, pyast.FunctionDef, pyast.AsyncFunctionDef, pyast.ClassDef)) and n.body and isinstance(n.body[0], pyast.Expr):
            skip.add(id(n.body[0].value))
        elif isinstance(n, pyast.Compare) and any(isinstance(op, (pyast.In, pyast.NotIn)) for op in n.ops):
            skip |= {id(x) for x in pyast.walk(n.left)}
        elif isinstance(n, pyast.Call) and isinstance(n.func, pyast.Name) and n.func.id == "CheckWordsError":
            skip |= {id(x) for x in pyast.walk(n)}
    for n in pyast.walk(tree):
        if isinstance(n, pyast.JoinedStr):  # an f-string is one sentence: its words between the values
            skip |= {id(part) for part in n.values}
            if id(n) not in skip:
                text = " ".join(part.value for part in n.values if isinstance(part, pyast.Constant))
                if sum(bool(word.match(t)) for t in text.split()) >= SENTENCE_WORDS:
                    yield n.lineno, text
        elif isinstance(n, pyast.Constant) and isinstance(n.value, str) and id(n) not in skip and sum(bool(word.match(t)) for t in n.value.split()) >= SENTENCE_WORDS:
            yield n.lineno, n.value


def test_the_sentence_reader_finds_a_message_written_in_python(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        '"""A docstring of many words is not printed."""\nx = f"{kind} has no comment {what} naming {where}"\nif "does not occur in any rule head" in x:\n    y = "table fact"\nz = "criterion id is declared twice"\n'
    )
    assert sorted(_sentences(module)) == [(2, " has no comment   naming "), (5, "criterion id is declared twice")]


@pytest.mark.parametrize("module", SPEAKS_THE_KBS_WORDS)
def test_a_module_that_speaks_the_kbs_words_holds_no_sentence_of_its_own(module):
    """check.py's findings are worded in framework/words/check.lp: a message written back in Python fails here."""
    from .conftest import ROOT

    found = list(_sentences(ROOT / "kineret_asp" / module))
    assert not found, f"kineret_asp/{module} writes words the KB should hold (kb/framework/words/): {found}"
