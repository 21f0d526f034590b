"""The Python entry points: evaluate one case or many, with any KB folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from .cases.case import Case
from .cases.load import CaseLike, Loaded, load
from .cases.versions import Chooser, KbLike
from .decisions.decision import Decision, build_decision, builder, with_input_notes
from .engine.chunked import CaseFailure, ChunkEngine
from .engine.warm import ResidentEngine
from .errors import KineretError
from .knowledge.base import KnowledgeBase
from .memo import frozen_heap

__all__ = ["CaseLike", "CaseUndecided", "KbLike", "decide", "decide_many", "engine_for", "evaluate", "evaluate_many", "resident_for"]


class CaseUndecided(KineretError):
    """The solver could not decide a case (over the time limit, or no answer)."""


def engine_for(kb: KnowledgeBase) -> ChunkEngine:
    """The chunk engine of a KB (one per loaded KB, kept with it)."""
    return kb.derived("chunk_engine", lambda: ChunkEngine(kb))


def resident_for(kb: KnowledgeBase) -> ResidentEngine:
    """The warm one-case engine of a KB (grounded on first use, kept with it)."""
    return kb.derived("resident_engine", lambda: ResidentEngine(kb, engine_for(kb)))


def evaluate(case: CaseLike, kb: KbLike = None, time_limit: Optional[float] = None, memory_limit: Optional[int] = None) -> Decision:
    """Decide one case: a Case, a dict in the case format, or a case file path.

    With a KB tree (or None, the packaged KB) the version in force on the
    case's date of service decides (the latest when it gives none); a
    KnowledgeBase or a version folder decides every case. The first call
    grounds the version once (about 0.1 s); later calls answer from the
    grounded program in about a millisecond. With ``time_limit`` (seconds)
    or ``memory_limit`` (MB) the whole call (loading the KB when it is not
    loaded yet, and deciding) runs in a worker process stopped at the limit,
    grounding included (:mod:`kineret_asp.limits`); a case over it raises
    :class:`CaseUndecided` naming the limit.
    """
    if time_limit is not None or memory_limit is not None:
        return _evaluate_limited(case, kb, time_limit, memory_limit)
    return decide(load(case, kb))


def decide(loaded: Loaded) -> Decision:
    """Decide a case already loaded (validated against the version chosen for it), with its input's notes."""
    case, choice = loaded.case, loaded.choice
    result = resident_for(choice.kb).run_one(case.atoms())
    if isinstance(result, CaseFailure):
        raise CaseUndecided(f"{case.source}: {result.message}")
    return with_input_notes(build_decision(case, result, choice.kb, choice.route), loaded.notes)


def _evaluate_limited(case: CaseLike, kb: KbLike, time_limit: Optional[float], memory_limit: Optional[int]) -> Decision:
    """:func:`evaluate` in a worker process, within the limits: a fresh grounding, no resident engine."""
    from .limits import DEFAULT_MEMORY_MB, MIN_MEMORY_MB, Limits, run_limited, valid_seconds

    if time_limit is not None:
        time_limit = valid_seconds(time_limit)
    if memory_limit is not None and not (isinstance(memory_limit, int) and memory_limit >= MIN_MEMORY_MB):
        raise ValueError(f"memory_limit: expected a whole number of MB, at least {MIN_MEMORY_MB}, got {memory_limit!r}")
    limits = Limits(time_limit, memory_limit if memory_limit is not None else DEFAULT_MEMORY_MB)

    def work() -> tuple:
        try:
            loaded = load(case, kb)
            result = engine_for(loaded.choice.kb).run([loaded.case.atoms()])[0]
            if isinstance(result, CaseFailure):
                raise CaseUndecided(f"{loaded.case.source}: {result.message}")
            return ("ok", with_input_notes(build_decision(loaded.case, result, loaded.choice.kb, loaded.choice.route), loaded.notes))
        except KineretError as exc:
            return ("raise", exc)

    outcome = run_limited(work, limits)
    if not outcome.ok:
        source = case.source if isinstance(case, Case) else str(case) if isinstance(case, (str, Path)) else "<dict>"
        raise CaseUndecided(f"{source}: not decided: stopped at {limits.describe(outcome.status, options=False)}")
    kind, value = outcome.value
    if kind == "raise":
        raise value
    return value


def evaluate_many(cases: Iterable[CaseLike], kb: KbLike = None) -> Iterator[Decision]:
    """Decide many cases in chunks, each with the version chosen for it; yields decisions in input order."""
    chooser = Chooser.of(kb)
    with frozen_heap():  # the collector of a batch while the cases are read
        loaded = [load(c, chooser) for c in cases]
    yield from decide_many(loaded)


def decide_many(loaded: Sequence[Loaded]) -> Iterator[Decision]:
    """Decide cases already loaded: one engine run per version, in input order, each with its input's notes."""
    groups: dict[int, list[int]] = {}
    for i, item in enumerate(loaded):
        groups.setdefault(id(item.choice.kb), []).append(i)
    results: dict[int, Any] = {}
    with frozen_heap():  # the collector of a batch while the engine runs
        for members in groups.values():
            knowledge = loaded[members[0]].choice.kb
            outputs = engine_for(knowledge).run([loaded[i].case.atoms() for i in members])
            results.update(zip(members, outputs))
    for i, item in enumerate(loaded):
        result = results[i]
        if isinstance(result, CaseFailure):
            raise CaseUndecided(f"{item.case.source}: {result.message}")
        yield with_input_notes(builder(item.choice.kb).build(item.case, result, item.choice.route, deferred=True), item.notes)
