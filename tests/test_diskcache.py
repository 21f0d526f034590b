"""The cache of derived program texts: same answers, keyed by the KB's content."""
from __future__ import annotations

import shutil

from kineret_asp import diskcache
from kineret_asp.engine import ChunkEngine
from kineret_asp.knowledge import parse_kb

from .conftest import KB_DIR


def texts(tmp_path, monkeypatch, setting: str, kb_dir=KB_DIR) -> str:
    monkeypatch.setenv("KINERET_ASP_CACHE", setting)
    return ChunkEngine(parse_kb(kb_dir)).program.text


def test_cached_and_computed_programs_are_the_same(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    off = texts(tmp_path, monkeypatch, "off")
    assert not folder.exists()
    first = texts(tmp_path, monkeypatch, str(folder))
    files = list(folder.glob("chunk-*.lp"))
    assert len(files) == 1
    second = texts(tmp_path, monkeypatch, str(folder))
    assert off == first == second


def test_an_edit_to_the_kb_gets_its_own_entry(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    copy = tmp_path / "kb"
    shutil.copytree(KB_DIR, copy)
    texts(tmp_path, monkeypatch, str(folder))
    path = copy / "criteria" / "4_stills_disease.lp"
    path.write_text(path.read_text().replace('accepted_specialty("4", rheumatology).', 'accepted_specialty("4", (rheumatology; dermatology)).'))
    edited = texts(tmp_path, monkeypatch, str(folder), copy)
    assert len(list(folder.glob("chunk-*.lp"))) == 2
    assert "dermatology" in edited


def test_a_damaged_entry_is_computed_again(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    good = texts(tmp_path, monkeypatch, str(folder))
    (entry,) = folder.glob("chunk-*.lp")
    entry.write_text("garbage")
    assert texts(tmp_path, monkeypatch, str(folder)) == good
    assert entry.read_text().endswith(good)


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert texts(tmp_path, monkeypatch, str(blocker / "cache")) == texts(tmp_path, monkeypatch, "off")
    assert diskcache.cache_dir() is None
