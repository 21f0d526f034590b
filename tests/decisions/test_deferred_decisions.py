"""Decisions of the many-case paths: parts built when first read, shared by cases of one answer.

``evaluate_many`` and ``batch_evaluate`` build a decision's criteria tree,
``unmet``, ``blocking`` and ``undetermined`` when one of them is first read,
and cases with the same facts share one decision but for their id and
source. Whatever is read, and however, the values are those of a decision
built at once.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import pickle
import sys

from kineret_asp import batch_evaluate, evaluate_many
from kineret_asp.cases.load import load
from kineret_asp.decisions.decision import DEFERRED, DecisionBuilder, builder
from kineret_asp.engine.chunked import ChunkEngine
from kineret_asp.memo import BATCH_GC_THRESHOLD, frozen_heap

from ..conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from cases import generate  # noqa: E402


def _pairs(kb, n: int, seed: int):
    cases = [load(c, kb, shown=f"<{i}>").case for i, c in enumerate(generate(n, seed=seed))]
    outputs = ChunkEngine(kb).run([c.atoms() for c in cases])
    made = builder(kb)
    return [(made.build(c, o, "given"), made.build(c, o, "given", deferred=True)) for c, o in zip(cases, outputs)]


def test_a_deferred_decision_equals_the_one_built_at_once_on_generated_cases(kb):
    pairs = _pairs(kb, 800, seed=31)
    assert sum(1 for e, _ in pairs if any(n.evidence for root in e.criteria for n in root.walk())) > 100
    for i, (eager, deferred) in enumerate(pairs):
        first = DEFERRED[i % len(DEFERRED)]  # each part read first in turn: any of them makes them all
        assert getattr(deferred, first) == getattr(eager, first)
        for name in DEFERRED:
            assert getattr(deferred, name) == getattr(eager, name), name
        assert deferred == eager and repr(deferred) == repr(eager)
        assert deferred.to_dict() == eager.to_dict()
        assert deferred.statuses() == eager.statuses()


def test_a_deferred_decision_compares_prints_and_serializes_before_any_part_is_read(kb):
    checks = [
        lambda e, d: d == e,
        lambda e, d: repr(d) == repr(e),
        lambda e, d: d.to_json() == e.to_json(),
        lambda e, d: pickle.loads(pickle.dumps(d)) == e and pickle.loads(pickle.dumps(d)).criteria == e.criteria,
        lambda e, d: copy.deepcopy(d).to_dict() == e.to_dict(),
        lambda e, d: dataclasses.replace(d, id="other") == dataclasses.replace(e, id="other"),
        lambda e, d: dataclasses.asdict(d) == dataclasses.asdict(e),
    ]
    for check in checks:
        for eager, deferred in _pairs(kb, 60, seed=33):  # untouched decisions for every check
            assert check(eager, deferred)


def test_reading_the_verdict_builds_no_criteria_tree(kb, monkeypatch):
    calls = []
    tree = DecisionBuilder.tree
    monkeypatch.setattr(DecisionBuilder, "tree", lambda self, *a: calls.append(1) or tree(self, *a))
    decisions = list(evaluate_many(list(generate(300, seed=34)), kb))
    assert {d.decision for d in decisions} >= {"approved"} and len({d.decision for d in decisions}) > 1
    assert not calls
    assert all(d.criteria for d in decisions if d.approved)
    assert calls


def test_a_shared_decision_keeps_each_cases_id_and_source(kb):
    base = next(c for c in generate(200, seed=35) if c.get("medication_history"))
    lines = [json.dumps({**base, "id": f"twin-{i}"}) for i in range(5)]
    records = list(batch_evaluate(lines, kb, source="twins.jsonl", time_limit=None))
    decisions = [r.decision for r in records]
    assert [d.id for d in decisions] == [f"twin-{i}" for i in range(5)]
    assert [d.source for d in decisions] == [f"twins.jsonl:{i}" for i in range(1, 6)]
    assert decisions[0].criteria is decisions[4].criteria  # built once, for all five
    alone = list(batch_evaluate(lines[2:3], kb, source="twins.jsonl", time_limit=None))[0].decision
    assert decisions[2] == alone and decisions[2].to_dict() == alone.to_dict()
    assert [r.to_dict()["id"] for r in records] == [f"twin-{i}" for i in range(5)]


def test_the_api_paths_give_the_decisions_of_one_case_evaluations(kb):
    from kineret_asp import evaluate

    cases = list(generate(150, seed=36))
    many = list(evaluate_many(cases, kb))
    records = [r.decision for r in batch_evaluate([json.dumps(c) for c in cases], kb, time_limit=None)]
    for case, a, b in zip(cases, many, records):
        one = evaluate(case, kb)
        assert a.to_dict() == one.to_dict() == b.to_dict()


def test_the_collector_settings_nest_and_come_back():
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with frozen_heap():
        assert gc.get_threshold() == BATCH_GC_THRESHOLD
        with frozen_heap():
            assert gc.get_threshold() == BATCH_GC_THRESHOLD
        assert gc.get_threshold() == BATCH_GC_THRESHOLD  # the inner one leaves the outer's setting
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_the_api_paths_give_the_collector_back_between_chunks(kb):
    before = gc.get_threshold()
    seen = []
    for record in batch_evaluate([json.dumps(c) for c in generate(30, seed=37)], kb, chunk_size=10, time_limit=None):
        seen.append(gc.get_threshold())
        assert record.decision is not None
    assert set(seen) == {before}  # the caller's code runs with its own collector
    for _ in evaluate_many(list(generate(30, seed=38)), kb):
        seen.append(gc.get_threshold())
    assert set(seen) == {before} and gc.get_threshold() == before
