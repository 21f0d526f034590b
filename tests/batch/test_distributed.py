"""Batch on a distributed engine: a Dask bag in Dask's own local (process) mode."""

from __future__ import annotations

import io
import json
import sys

import pytest

from kineret_asp.batch.run import run_batch

from ..conftest import KB_DIR, ROOT

sys.path.insert(0, str(ROOT / "bench"))
import cases as generator  # noqa: E402

dask = pytest.importorskip("dask")


def local_records(path, kb) -> list[str]:
    sink = io.BytesIO()
    with open(path, "rb") as source:
        run_batch(source, sink, kb, str(path))
    return sink.getvalue().decode().splitlines()


@pytest.mark.slow
def test_dask_bag_over_jsonl_partitions_matches_local_batch(tmp_path):
    from kineret_asp.batch.distributed import dask_batch

    paths = []
    for part in range(3):
        path = tmp_path / f"part-{part}.jsonl"
        lines = [json.dumps(c) for c in generator.generate(300, seed=part)]
        if part == 1:
            lines[5] = "not json"
            lines[9] = json.dumps({"indication": "rheumatoid_arthritis", "current_medications": ["enbrl"]})
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    records = dask_batch([str(p) for p in paths]).compute(scheduler="processes", num_workers=2)
    expected = [r for p in paths for r in local_records(p, KB_DIR)]  # the tree, as dask_batch uses it
    assert records == expected
    assert len(records) == 900
    bad = [json.loads(r) for r in records if '"error"' in r]
    assert [b["line"] for b in bad] == [6, 10]
    assert bad[0]["error"].startswith(str(paths[1]) + ":6: invalid JSON")


def test_the_kb_travels_as_package_data():
    from kineret_asp.batch.distributed import decide_partition
    from kineret_asp.knowledge.layout import default_kb_path

    assert (default_kb_path() / "framework" / "decision.lp").is_file()
    (record,) = decide_partition(['{"id": "p", "indication": "sjia", "prescriber_specialties": ["rheumatology"]}'])
    assert json.loads(record)["decision"] == "approved"
