"""The Python entry points: evaluate one case or many, with any KB folder."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar, Union

from .case import Case, load_case
from .decision import Decision, build_decision
from .engine import CaseFailure, ChunkEngine
from .resident import ResidentEngine
from .errors import KineretError
from .knowledge import KnowledgeBase, resolve_kb

CaseLike = Union[Case, Mapping[str, Any], str, Path]
KbLike = Union[KnowledgeBase, Path, str, None]

_ENGINES: dict[int, ChunkEngine] = {}
_RESIDENT: dict[int, ResidentEngine] = {}
T = TypeVar("T", ChunkEngine, ResidentEngine)


class CaseUndecided(KineretError):
    """The solver could not decide a case (over the time limit, or no answer)."""


def _per_kb(registry: dict[int, T], kb: KnowledgeBase, make: Callable[[KnowledgeBase], T], size: int) -> T:
    """One engine per loaded KB (an engine holds its KB, so ids are not reused while cached)."""
    engine = registry.get(id(kb))
    if engine is None or engine.kb is not kb:
        if len(registry) >= size:
            registry.clear()
        engine = registry[id(kb)] = make(kb)
    return engine


def engine_for(kb: KnowledgeBase) -> ChunkEngine:
    """The chunk engine of a KB."""
    return _per_kb(_ENGINES, kb, ChunkEngine, 16)


def resident_for(kb: KnowledgeBase) -> ResidentEngine:
    """The warm one-case engine of a KB (grounded on first use)."""
    return _per_kb(_RESIDENT, kb, lambda k: ResidentEngine(k, engine_for(k)), 4)


def evaluate(case: CaseLike, kb: KbLike = None) -> Decision:
    """Decide one case: a Case, a dict in the case format, or a case file path.

    The first call grounds the KB once (about 0.1 s); later calls answer
    from the grounded program in about a millisecond.
    """
    knowledge = resolve_kb(kb)
    loaded = load_case(case, knowledge)
    result = resident_for(knowledge).run_one(loaded.atoms())
    if isinstance(result, CaseFailure):
        raise CaseUndecided(f"{loaded.source}: {result.message}")
    return build_decision(loaded, result, knowledge.vocabulary)


def evaluate_many(cases: Iterable[CaseLike], kb: KbLike = None) -> Iterator[Decision]:
    """Decide many cases in chunks; yields decisions in input order."""
    knowledge = resolve_kb(kb)
    engine = engine_for(knowledge)
    loaded = [load_case(c, knowledge) for c in cases]
    for case, result in zip(loaded, engine.run([c.atoms() for c in loaded])):
        if isinstance(result, CaseFailure):
            raise CaseUndecided(f"{case.source}: {result.message}")
        yield build_decision(case, result, knowledge.vocabulary)
