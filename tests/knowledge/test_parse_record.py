"""A KB loaded from the record of a clean parse: the same program as a parse, never from a forged, stale or broken one, and no parse on the deciding path."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from pathlib import Path

import pytest

from kineret_asp import batch_evaluate, evaluate, evaluate_many, missing, what_if
from kineret_asp.errors import KbError
from kineret_asp.knowledge import base, diskcache
from kineret_asp.knowledge.base import parse_version

from ..conftest import FACTS, KB_DIR, VERSION, copy_kb

CASES = [
    FACTS / "ra" / "approved_employer_group.json",
    FACTS / "ra" / "actemra_iv_is_not_sc.json",
    FACTS / "sjia" / "approved.json",
    FACTS / "not_covered" / "osteoarthritis.json",
]
CHANGES = [{"op": "add", "path": "prescriber_specialties", "value": "rheumatology"}]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test's own (the key stays the suite's)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("KINERET_ASP_CACHE", str(folder))
    return folder


def load(version: Path):
    """A load of the version as ``load_kb`` makes it (its vocabulary read: a KB that does not ground says so at load), without the in-process cache of loaded KBs."""
    kb = parse_version(version.parent.parent.parent, version)
    kb.vocabulary
    return kb


def records(folder: Path) -> list[Path]:
    return sorted(folder.glob("parse-*.lp"))


def statements(kb) -> list[tuple]:
    return [(s.part, str(s.node), s.file, s.rank, s.line) for s in kb.statements]


def comments(kb) -> list[tuple]:
    return [(s.part, str(s.node), s.file, s.rank) for s in kb.comments]


def test_a_kb_from_a_warm_record_is_the_kb_a_parse_makes(cache):
    cold = load(KB_DIR / VERSION)
    assert cold.parsed and len(records(cache)) == 1
    warm = load(KB_DIR / VERSION)
    assert not warm.parsed  # made from the record: nothing parsed yet
    for name in ("files", "texts", "raw", "included", "messages", "errors", "digest", "rules_sha256", "framework_sha256"):
        assert getattr(warm, name) == getattr(cold, name), name
    assert warm.included  # the version includes libraries: the record said which, and where
    assert list(warm.texts) == list(cold.texts)  # in the order a parse reads them
    assert warm.vocabulary == cold.vocabulary
    assert warm.schema.fields == cold.schema.fields
    assert not warm.parsed
    assert statements(warm) == statements(cold)
    assert comments(warm) == comments(cold)
    assert warm.parsed


def test_a_warm_kb_decides_as_a_cold_one(cache):
    cold = load(KB_DIR / VERSION)
    expected = [evaluate(case, cold).to_dict() for case in CASES]
    warm = load(KB_DIR / VERSION)
    assert [evaluate(case, warm).to_dict() for case in CASES] == expected
    assert [d.to_dict() for d in evaluate_many(CASES, warm)] == expected
    assert missing(CASES[1], warm).to_dict() == missing(CASES[1], cold).to_dict()


def decide_every_way(kb) -> list:
    """Every deciding path on the cases: one at a time, many, a batch, what is missing, what if."""
    out = [evaluate(case, kb).to_dict() for case in CASES]
    out.append([d.to_dict() for d in evaluate_many(CASES, kb)])
    out.append([r.decision.to_dict() for r in batch_evaluate([case.read_text() for case in CASES], kb)])
    out.append(missing(CASES[1], kb).to_dict())
    out.append(what_if(CASES[1], CHANGES, kb).to_dict())
    return out


def test_the_deciding_paths_parse_nothing_once_the_cache_is_warm(cache):
    cold = load(KB_DIR / VERSION)
    expected = decide_every_way(cold)  # fills the cache: the record and every program derived
    kb = load(KB_DIR / VERSION)
    assert decide_every_way(kb) == expected
    assert not kb.parsed


def test_without_the_cache_everything_is_parsed_and_the_same(tmp_path, monkeypatch, cache):
    warm_cache = load(KB_DIR / VERSION)
    monkeypatch.setenv("KINERET_ASP_CACHE", "off")
    off = load(KB_DIR / VERSION)
    assert off.parsed
    assert statements(off) == statements(warm_cache)
    assert evaluate(CASES[0], off).to_dict() == evaluate(CASES[0], warm_cache).to_dict()


def test_the_statements_are_parsed_once_whatever_the_threads(cache, monkeypatch):
    load(KB_DIR / VERSION)
    kb = load(KB_DIR / VERSION)
    calls = []
    parse = base.parse_program

    def counted(*args, **kwargs):
        calls.append(1)
        return parse(*args, **kwargs)

    monkeypatch.setattr(base, "parse_program", counted)
    seen = []
    start = threading.Barrier(8)

    def read() -> None:
        start.wait()
        seen.append(kb.statements)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(s is seen[0] for s in seen) and seen[0]


def test_a_lazy_parse_reads_the_bytes_loaded_not_the_files_edited_since(tmp_path, cache):
    version = copy_kb(tmp_path)
    load(version)
    kb = load(version)
    assert not kb.parsed
    path = version / "criteria" / "4_stills_disease.lp"
    shown = base.display_path(path)
    path.write_text(kb.texts[shown].replace('accepted_specialty("4", rheumatology).', 'accepted_specialty("4", dermatology).'))
    read = "\n".join(str(s.node) for s in kb.statements if s.file == shown)
    assert "rheumatology" in read and "dermatology" not in read


def test_statements_read_after_a_change_of_working_folder_name_files_as_the_load_did(tmp_path, cache, monkeypatch):
    cold = load(KB_DIR / VERSION)
    warm = load(KB_DIR / VERSION)
    monkeypatch.chdir(tmp_path)  # display paths are relative to the working folder: the load's must stay
    assert statements(warm) == statements(cold)
    assert {s.file for s in warm.statements} == set(warm.texts)


def forge(entry: Path, body: bytes, secret: bytes) -> None:
    """Rewrite an entry with another body under a header made with ``secret``."""
    first = entry.read_bytes().split(b"\n", 1)[0].decode("ascii")
    key = first.split()[4]
    mac = hmac.new(secret, key.encode("ascii") + b"\0" + body, hashlib.sha256).hexdigest()
    entry.write_bytes(f"% kineret-asp cache {diskcache.FORMAT} {key} hmac-sha256 {mac}\n".encode("ascii") + body)


def test_a_forged_record_is_not_used(cache):
    cold = load(KB_DIR / VERSION)
    (entry,) = records(cache)
    forge(entry, b'{"format":1,"libraries":[]}', b"another key".ljust(32, b"\0"))  # a version that includes nothing
    kb = load(KB_DIR / VERSION)
    assert kb.parsed  # parsed at load: the record's HMAC does not check
    assert kb.included == cold.included and kb.files == cold.files


def test_a_record_with_the_right_key_but_an_edited_body_is_not_used(cache):
    cold = load(KB_DIR / VERSION)
    (entry,) = records(cache)
    raw = entry.read_bytes()
    entry.write_bytes(raw.replace(b'"libraries":[', b'"libraries":[["samples","policies/IP0243/2024-06-01/policy.lp",1,1],', 1))
    kb = load(KB_DIR / VERSION)
    assert kb.parsed
    assert kb.files == cold.files


def test_a_stale_record_is_not_used(tmp_path, cache):
    version = copy_kb(tmp_path)
    cold = load(version)
    (original,) = records(cache)
    policy = version / "policy.lp"
    policy.write_text(policy.read_text() + "\n% one more comment\n")
    load(version)
    (edited,) = [e for e in records(cache) if e != original]
    original.write_bytes(edited.read_bytes())  # the edited KB's record under the original's name
    policy.write_text(policy.read_text().replace("\n% one more comment\n", ""))
    kb = load(version)
    assert kb.parsed
    assert kb.texts == cold.texts


def same_size_edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` (as long) in a file, keeping its size and its modification time."""
    assert len(old) == len(new)
    st = path.stat()
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def test_a_file_edited_to_the_same_size_is_parsed_again(tmp_path, cache):
    version = copy_kb(tmp_path)
    load(version)
    assert not load(version).parsed
    path = version / "criteria" / "4_stills_disease.lp"
    same_size_edit(path, 'accepted_specialty("4", rheumatology).', 'accepted_specialty("4", rheumatologx).')
    kb = load(version)
    assert kb.parsed
    assert any("rheumatologx" in str(s.node) for s in kb.statements)
    assert len(records(cache)) == 2


def test_a_library_file_edited_to_the_same_size_is_parsed_again(tmp_path, cache):
    version = copy_kb(tmp_path)
    cold = load(version)
    library = Path(next(iter(cold.included)))
    same_size_edit(library, "% ====", "%%====")
    kb = load(version)
    assert kb.parsed
    assert kb.texts[next(iter(cold.included))].startswith("%%====")


def test_a_library_the_version_does_not_include_is_part_of_the_record_key(tmp_path, cache):
    version = copy_kb(tmp_path)
    spare = version.parent.parent.parent / "framework" / "library" / "spare.lp"
    spare.write_text("% a library no version declares (yet)\nspare_fact(1).\n")
    load(version)
    assert not load(version).parsed
    same_size_edit(spare, "spare_fact(1)", "spare_fact(2)")  # an edit of the version may declare it: its bytes count
    assert load(version).parsed


def test_a_kb_whose_parse_has_errors_is_never_recorded(tmp_path, cache):
    version = copy_kb(tmp_path)
    path = version / "policy.lp"
    path.write_text(path.read_text() + "\nbroken( :- .\n")
    shown = base.display_path(path)
    for _ in range(2):
        with pytest.raises(KbError) as raised:
            load(version)
        assert any(d.file == shown and d.line > 0 for d in raised.value.diagnostics)
        unchecked = parse_version(version.parent.parent.parent, version, strict=False)
        assert unchecked.parsed and unchecked.errors
        assert [str(d) for d in unchecked.errors] == [str(d) for d in raised.value.diagnostics]
    assert records(cache) == []  # the framework's files alone never make a record either


def test_a_kb_with_a_refused_directive_is_never_recorded(tmp_path, cache):
    version = copy_kb(tmp_path)
    path = version / "policy.lp"
    path.write_text(path.read_text() + '\n#include "policy.lp".\n')
    for _ in range(2):
        with pytest.raises(KbError, match="#include is not allowed"):
            load(version)
    assert records(cache) == []
