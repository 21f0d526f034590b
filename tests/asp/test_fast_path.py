"""Every speed path gives what the plain path gives: clingo's C layer (kineret_asp.asp._clingo_c) and its
public-API twin, the decision encoder and ``json.dumps`` of ``to_dict()``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from kineret_asp.asp import _clingo_c as _fast

from ..conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from cases import generate  # noqa: E402


def run_batch(lines: bytes, public: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "KINERET_ASP_PUBLIC_API": "1" if public else "0"}
    return subprocess.run([sys.executable, "-m", "kineret_asp", "batch", "-", "--chunk-size", "97", "--quiet"], input=lines, capture_output=True, env=env, check=True)


@pytest.mark.slow  # two batch processes of 600 cases; the fast lane keeps the encoder's and the templates' byte checks
def test_the_public_api_path_gives_the_same_bytes_on_hundreds_of_cases():
    cases = list(generate(600, seed=7))
    lines = "".join(json.dumps(c) + "\n" for c in cases).encode()
    fast = run_batch(lines, public=False)
    public = run_batch(lines, public=True)
    assert fast.stdout == public.stdout
    records = [json.loads(line) for line in public.stdout.splitlines()]
    assert len(records) == 600 and len({r.get("decision") for r in records}) == 4


def test_the_public_path_is_what_runs_when_asked_for(monkeypatch):
    from kineret_asp.asp.facts import FactAdder, ShownReader
    from kineret_asp.asp.symbols import SymbolDecoder

    monkeypatch.setenv("KINERET_ASP_PUBLIC_API", "1")
    assert not _fast.enabled()
    assert FactAdder()._raw is None and ShownReader(SymbolDecoder())._raw is None
    monkeypatch.setenv("KINERET_ASP_PUBLIC_API", "0")
    assert _fast.enabled() == _fast.AVAILABLE
    assert (FactAdder()._raw is not None) == _fast.AVAILABLE


def test_only_the_fast_module_reaches_under_the_public_api():
    for path in sorted((ROOT / "kineret_asp").rglob("*.py")):
        if path.name == "_clingo_c.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "clingo._internal" not in text and not re.search(r"\._rep\b", text), path.name


def test_the_decision_encoder_writes_the_bytes_of_to_dict(kb):
    import json as plain_json

    from kineret_asp import evaluate_many
    from kineret_asp.author.example_cases import discover
    from kineret_asp.decisions.decision import DecisionEncoder
    from kineret_asp.safetext import safe_json

    from ..conftest import FACTS

    encode = plain_json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    dumps = lambda data: safe_json(encode(data))  # noqa: E731 - the batch's own encoding
    cases = [*generate(400, seed=13), *discover([FACTS]), {"id": "\u2028\x85 odd id", "indication": "sjia"}]
    decisions = list(evaluate_many(cases, kb))
    encoder = DecisionEncoder(dumps, size=7)  # small: the kept texts are dropped and made again
    for decision in decisions + decisions:
        fields = encoder.fields(decision)
        assert encoder.encode(fields) == dumps(decision.to_dict())
        fields.pop("id")
        assert encoder.encode(fields) == dumps({k: v for k, v in decision.to_dict().items() if k != "id"})
    assert len({id(d.criteria) for d in decisions}) < len(decisions) / 2  # the trees are shared: the text is reused


def test_a_shape_template_filled_with_a_case_gives_the_bytes_of_its_own_decision(kb):
    """Cases of one shape of answer share a template; each case's evidence, notes and undetermined facts are its own."""
    import json as plain_json

    from kineret_asp.author.example_cases import discover
    from kineret_asp.cases.load import load
    from kineret_asp.decisions.decision import DecisionEncoder, builder
    from kineret_asp.decisions.record_texts import RecordTexts
    from kineret_asp.engine.chunked import ChunkEngine
    from kineret_asp.safetext import safe_json

    from ..conftest import FACTS

    encode = plain_json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    dumps = lambda data: safe_json(encode(data))  # noqa: E731 - the batch's own encoding
    given = [*generate(1500, seed=21), *discover([FACTS])]
    cases = [load(c, kb, shown=f"<{i}>").case for i, c in enumerate(given)]
    outputs = ChunkEngine(kb).run([c.atoms() for c in cases])
    made = builder(kb)
    texts = RecordTexts(DecisionEncoder(dumps), size=40)  # small: templates are dropped and made again
    shapes, undetermined = set(), 0
    for case, out in zip(cases, outputs):
        expected = dumps({k: v for k, v in made.build(case, out, "given").to_dict().items() if k != "id"})
        assert "{" + texts.text(made, case, out, "given") == expected
        shapes.add(made.shape_key(case, out, "given"))
        undetermined += bool(out.get("undetermined"))
    assert undetermined and len(texts.shapes) == 40 and len(texts.trees) <= texts.trees.size
    facts = {tuple(c.atoms()) for c in cases}
    assert len(shapes) < 0.3 * len(facts)  # cases whose evidence and notes differ share a shape


def test_the_fast_reader_reads_chunk_after_chunk_what_the_public_api_reads(kb, monkeypatch):
    """Answer atoms remembered by raw number (a case's place in its chunk) are read again as the public API reads them."""
    from kineret_asp.cases.load import load
    from kineret_asp.engine.chunked import ChunkEngine

    if not _fast.enabled():
        pytest.skip("clingo's C layer is not available")
    atoms = [load(c, kb, shown=f"<{i}>").case.atoms() for i, c in enumerate(generate(400, seed=17))]
    fast = ChunkEngine(kb, chunk_size=40)
    got = fast.run(atoms)
    monkeypatch.setenv("KINERET_ASP_PUBLIC_API", "1")
    public = ChunkEngine(kb, chunk_size=40)
    assert public.reader._raw is None and got == public.run(atoms)
    read = sum(len(v) for out in got for v in out.values())
    remembered = fast.reader._raw._read
    assert 0 < len(remembered) < 0.7 * read  # many atoms were met again at the same place of a later chunk
    readings = fast.reader._raw._readings
    assert 0 < len(readings) < 0.2 * len(remembered)  # an atom met at another place is read from what its arguments read as the first time
    assert len({id(a) for out in got for v in out.values() for a in v}) < len(fast.reader._raw._atoms) * 2  # equal atoms are one tuple


def test_shown_atoms_compare_as_the_models_symbols_do_on_both_paths(monkeypatch):
    """Mutation compares models by their shown atoms' raw numbers: equal sets exactly when the symbols are, each member's symbol given back."""
    import clingo

    from kineret_asp.asp.facts import atom_symbol, shown_atoms

    def sets(program: str) -> tuple[frozenset, frozenset]:
        control = clingo.Control()
        control.add("base", [], program)
        control.ground([("base", [])])
        with control.solve(yield_=True) as handle:
            model = next(iter(handle))
            return shown_atoms(model), frozenset(model.symbols(shown=True))

    for public in ("0", "1"):
        monkeypatch.setenv("KINERET_ASP_PUBLIC_API", public)
        a, a_symbols = sets('p(1, "x"). p(2, f(y)). q(1).')
        b, b_symbols = sets('q(1). p(2, f(y)). p(1, "x").')
        c, c_symbols = sets('p(1, "x"). p(2, f(z)). q(1).')
        assert a == b and a != c
        assert {atom_symbol(m) for m in a} == a_symbols == b_symbols
        assert {atom_symbol(m) for m in a ^ c} == a_symbols ^ c_symbols
        assert all(isinstance(m, int) for m in a) == (public == "0" and _fast.AVAILABLE)
