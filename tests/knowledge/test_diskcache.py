"""The cache of derived program texts: same answers, keyed by the KB's content, trusted only when its digest checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from kineret_asp import evaluate
from kineret_asp.engine.program import Compiled
from kineret_asp.knowledge import diskcache
from kineret_asp.knowledge.base import parse_kb

from ..conftest import FACTS, KB_DIR, copy_kb


def texts(tmp_path, monkeypatch, setting: str, kb_dir=KB_DIR) -> str:
    monkeypatch.setenv("KINERET_ASP_CACHE", setting)
    return Compiled(parse_kb(kb_dir)).chunk_text


@pytest.mark.slow
def test_cached_and_computed_programs_are_the_same(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    off = texts(tmp_path, monkeypatch, "off")
    assert not folder.exists()
    first = texts(tmp_path, monkeypatch, str(folder))
    files = list(folder.glob("chunk-*.lp"))
    assert len(files) == 1
    second = texts(tmp_path, monkeypatch, str(folder))
    assert off == first == second


@pytest.mark.slow
def test_an_edit_to_the_kb_gets_its_own_entry(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    copy = copy_kb(tmp_path)
    texts(tmp_path, monkeypatch, str(folder))
    path = copy / "criteria" / "4_stills_disease.lp"
    path.write_text(path.read_text().replace('accepted_specialty("4", rheumatology).', 'accepted_specialty("4", (rheumatology; dermatology)).'))
    edited = texts(tmp_path, monkeypatch, str(folder), copy)
    assert len(list(folder.glob("chunk-*.lp"))) == 2
    assert "dermatology" in edited


@pytest.mark.slow
def test_a_damaged_entry_is_computed_again(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    good = texts(tmp_path, monkeypatch, str(folder))
    (entry,) = folder.glob("chunk-*.lp")
    entry.write_text("garbage")
    assert texts(tmp_path, monkeypatch, str(folder)) == good
    assert entry.read_text().endswith(good)


@pytest.mark.slow
def test_a_truncated_entry_with_its_header_intact_is_computed_again(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    good = texts(tmp_path, monkeypatch, str(folder))
    (entry,) = folder.glob("chunk-*.lp")
    raw = entry.read_text()
    entry.write_text(raw[: len(raw) // 2])  # the header stays, the program is cut mid-rule
    assert texts(tmp_path, monkeypatch, str(folder)) == good
    assert entry.read_text() == raw


@pytest.mark.slow
def test_a_poisoned_entry_never_changes_a_decision(tmp_path):
    """Editing a cached program (not covered -> approved) must not approve an osteoarthritis case."""
    folder = tmp_path / "cache"
    env = {**os.environ, "KINERET_ASP_CACHE": str(folder)}
    case = str(FACTS / "not_covered" / "osteoarthritis.json")
    cmd = [sys.executable, "-m", "kineret_asp", "evaluate", case, "--format", "json"]
    first = subprocess.run(cmd, capture_output=True, env=env, check=True)
    poisoned = 0
    for entry in folder.glob("*.lp"):
        text = entry.read_text()
        if "decision(not_covered)" in text or "not_covered) :-" in text:
            entry.write_text(text.replace("decision(not_covered) :-", "decision(approved) :-").replace("not_covered) :-", "approved) :-"))
            poisoned += 1
    assert poisoned
    second = subprocess.run(cmd, capture_output=True, env=env, check=True)
    assert json.loads(second.stdout)["decision"] == "not_covered"
    assert first.stdout == second.stdout
    batch = subprocess.run([sys.executable, "-m", "kineret_asp", "batch", "-"], input=open(case, "rb").read().replace(b"\n", b"") + b"\n", capture_output=True, env=env)
    assert json.loads(batch.stdout)["decision"] == "not_covered"


@pytest.mark.slow
def test_an_unwritable_cache_folder_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert texts(tmp_path, monkeypatch, str(blocker / "cache")) == texts(tmp_path, monkeypatch, "off")
    monkeypatch.setenv("KINERET_ASP_CACHE", "off")
    assert diskcache.cache_dir() is None


@pytest.mark.slow
def test_old_entries_are_pruned(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    texts(tmp_path, monkeypatch, str(folder))
    old = folder / "chunk-stale.lp"
    old.write_text("% stale")
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    assert diskcache.prune(folder) == 1
    assert not old.exists() and list(folder.glob("chunk-*.lp"))


@pytest.mark.slow
def test_the_packaged_kb_still_decides_with_a_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KINERET_ASP_CACHE", str(tmp_path / "cache"))
    assert evaluate(FACTS / "ra" / "approved_employer_group.json", parse_kb(KB_DIR)).decision == "approved"


def test_check_reads_the_package_s_word_scan_from_the_cache_and_ignores_a_forged_entry(tmp_path, monkeypatch):
    from kineret_asp.author import words_filled

    folder = tmp_path / "cache"
    monkeypatch.setenv("KINERET_ASP_CACHE", str(folder))
    monkeypatch.setattr(words_filled, "_FILLED", [])
    scanned = words_filled._scanned()
    assert scanned == words_filled._scan_package()
    (entry,) = folder.glob("words-filled-*.lp")

    def no_scan():
        raise AssertionError("the package was scanned again")

    monkeypatch.setattr(words_filled, "_scan_package", no_scan)
    assert words_filled._scanned() == scanned  # read back, not scanned
    header, body = entry.read_bytes().split(b"\n", 1)
    entry.write_bytes(header + b"\n" + body.replace(b"[", b"[ ", 1))  # same header, other body: the HMAC no longer checks
    with pytest.raises(AssertionError, match="scanned again"):
        words_filled._scanned()
