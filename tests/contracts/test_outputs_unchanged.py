"""The public faces answer byte for byte as recorded (outputs.py says what is recorded and how to record again)."""

from __future__ import annotations

import json

import pytest

from .outputs import RECORD, examples, generated, outputs


def test_the_record_covers_every_example_and_2000_generated_cases():
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    assert len(generated()) == 2000
    for path in examples():
        assert any(key.startswith("api evaluate ") and path.as_posix().endswith(key.split(" ", 2)[2]) for key in recorded)


@pytest.mark.slow
def test_every_public_output_is_as_recorded():
    recorded = json.loads(RECORD.read_text(encoding="utf-8"))
    fresh = outputs()
    changed = sorted(k for k in recorded.keys() | fresh.keys() if recorded.get(k) != fresh.get(k))
    assert not changed, f"{len(changed)} outputs differ from the record (run `python -m tests.contracts.outputs` on the commit before to compare): {changed[:20]}"
