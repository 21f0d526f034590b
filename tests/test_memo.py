"""Bounded memo tables: a long batch remembers a fixed amount, whatever its length."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kineret_asp.batch.run import BatchWorker
from kineret_asp.cases.versions import Chooser
from kineret_asp.decisions.decision import builder
from kineret_asp.memo import Memo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import cases as generator  # noqa: E402


def test_the_least_recently_used_entry_is_forgotten_first():
    memo: Memo[str, int] = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "a" is now the most recently used
    memo.put("c", 3)
    assert memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3
    assert len(memo) == 2 and memo.hits == 3 and memo.misses == 1


def test_a_memo_of_size_zero_keeps_nothing():
    memo: Memo[str, int] = Memo(0)
    assert memo.put("a", 1) == 1
    assert memo.get("a") is None and len(memo) == 0


def test_every_table_a_batch_keeps_stays_within_its_size(tmp_path, monkeypatch):
    """Decide more distinct cases than any table holds: none grows past its bound, and the bytes do not change."""
    path = tmp_path / "cases.jsonl"
    generator.write(600, str(path))
    lines = list(enumerate(path.read_bytes().splitlines(), start=1))
    chooser = Chooser.of(ROOT / "kb")
    big = BatchWorker(chooser, "in", None, cache=10_000)
    expected = "".join(big.decide(lines[i : i + 100])[0] for i in range(0, len(lines), 100))
    small = BatchWorker(chooser, "in", None, cache=25)
    small.texts.shapes.size = 15
    small.texts.trees.size = 8
    small.texts.notes.size = 5
    small.texts.reasons.size = 3
    small.texts.pieces.size = 30
    small.encoder._texts.size = 10
    small.encoder._values.size = 40
    built = builder(chooser.default())
    monkeypatch.setattr(built, "_trees", Memo(20))  # the shared builder's tables, small for this test only
    monkeypatch.setattr(built, "_entries", Memo(30))
    got = "".join(small.decide(lines[i : i + 100])[0] for i in range(0, len(lines), 100))
    assert got == expected
    assert len(small.cache) == 25 and len(small.texts.shapes) == 15 and len(small.texts.trees) == 8
    assert len(small.texts.notes) == 5 and len(small.texts.reasons) == 3 and len(small.texts.pieces) == 30
    assert len(small.encoder._texts) <= 10 and len(small.encoder._values) == 40
    assert len(built._trees) == 20 and len(built._entries) == 30
    assert len({json.loads(line)["decision"] for line in got.splitlines()}) > 1


def test_a_batch_collects_garbage_less_often_and_gives_the_collector_back():
    import gc
    import io

    from kineret_asp.batch.run import BATCH_GC_THRESHOLD, run_batch

    class Sink(io.BytesIO):
        seen: list = []

        def write(self, data):  # type: ignore[override]
            self.seen.append(gc.get_threshold())
            return super().write(data)

    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    sink = Sink()
    run_batch(io.BytesIO(b'{"indication": "sjia"}\n'), sink, Chooser.of(ROOT / "kb"), "<gc>", time_limit=None)
    assert sink.getvalue().count(b"\n") == 1
    assert Sink.seen and set(Sink.seen) == {BATCH_GC_THRESHOLD} != {before}
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_an_id_is_written_as_the_batch_encoder_writes_it():
    """The short way to write a case id gives the bytes of the encoder every other field goes through."""
    from kineret_asp.batch.run import id_text

    worker = BatchWorker(Chooser.of(ROOT / "kb"), "in", None)
    for value in (None, "", "c7", 'quote " and \\ backslash', "line\nbreak", "\u2028\x85 odd", "é ñ 漢字", "\x00\x1f", "\ud800"):
        assert id_text(value) == worker.dumps(value)


def test_an_identity_memo_answers_only_for_the_object_it_kept():
    from kineret_asp.memo import IdentityMemo

    memo = IdentityMemo(2)
    first, second = ["a"], ["a"]  # equal, not the same object
    assert memo.keep(first, 1) == 1
    assert memo.recall(first) == 1 and memo.recall(second) is None
    memo.keep(second, 2)
    memo.keep(["c"], 3)  # the least recently used (first) is forgotten
    assert memo.recall(first) is None and memo.recall(second) == 2 and len(memo) == 2


def test_an_entry_another_thread_forgets_mid_lookup_is_still_returned():
    from collections import OrderedDict

    class ForgetsAfterReading(OrderedDict):  # another thread evicts the entry between the read and the reordering
        def get(self, key, default=None):
            value = super().get(key, default)
            self.pop(key, None)
            return value

    memo: Memo[str, int] = Memo(2)
    memo.data = ForgetsAfterReading()
    memo.put("a", 1)
    assert memo.get("a") == 1 and len(memo) == 0
    memo.data = OrderedDict()
    for n in range(5):
        memo.put(str(n), n)
    assert list(memo.data) == ["3", "4"]


def test_an_identity_memo_makes_a_value_once_per_object():
    from kineret_asp.memo import IdentityMemo

    memo = IdentityMemo(10)
    made: list[int] = []
    first, twin = [1], [1]  # equal, but two objects

    def make() -> tuple:
        made.append(1)
        return (len(made),)

    assert memo.of(first, make) == (1,) and memo.of(first, make) == (1,)
    assert memo.of(twin, make) == (2,) and len(made) == 2
