"""A case's bytes and its JSON: files, streams and text read within the caps, before any validation.

A case file is refused before it is read when it is larger than a case can
be; a stream (stdin) once more bytes arrive than a case can hold; JSON text
that is too deep, has too many values, repeats a key or holds NaN or
Infinity is refused with one line naming the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from ..errors import CaseError
from ..knowledge.schema import MAX_LIST_ITEMS
from .caps import MAX_CASE_BYTES, MAX_JSON_VALUES, read_capped, too_many_values

MAX_FILE_BYTES = MAX_CASE_BYTES


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object's pairs as a dict, refused when a key repeats (made in one call: a case line holds a few objects)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_reject_constant)


def parse_json_text(text: Union[str, bytes], source: str) -> Any:
    """Decode JSON, turning every failure into a one-line CaseError."""
    if too_many_values(text):  # counted before json.loads builds them
        raise CaseError(source, "", f"too many values (a case holds at most {MAX_JSON_VALUES:,} JSON values; a list at most {MAX_LIST_ITEMS:,} entries)")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CaseError(source, "", f"not UTF-8 text (byte {exc.start}): expected a JSON case") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise CaseError(source, "", "empty input: expected a JSON object (a case)")
    try:
        if text.startswith("\ufeff"):  # a second mark: json.loads says so in its own words
            return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
        return _DECODER.decode(text)  # what json.loads does with these options, without making a decoder per case
    except json.JSONDecodeError as exc:
        raise CaseError(source, "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise CaseError(source, "", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise CaseError(source, "", "invalid JSON: nested too deeply") from None


def read_case_stream(stream: Any, shown: str, cap: int = MAX_CASE_BYTES) -> bytes:
    """A case's bytes from a stream (stdin), refused once more than ``cap`` bytes arrive."""
    try:
        raw, more = read_capped(stream, cap)
    except OSError as exc:
        raise CaseError(shown, "", f"cannot read: {exc.strerror or exc}") from None
    if more:
        raise CaseError(shown, "", f"input too large (over {cap} bytes; a case is at most {cap} bytes)")
    return raw


def reading_error(exc: OSError, shown: str) -> CaseError:
    """A case file that cannot be read, as one line naming it."""
    if isinstance(exc, FileNotFoundError):
        return CaseError(shown, "", "no such file")
    if isinstance(exc, IsADirectoryError):
        return CaseError(shown, "", "is a folder, expected a case file")
    return CaseError(shown, "", f"cannot read file: {exc.strerror or exc}")


def read_case_file(path: Path, shown: str, cap: int) -> bytes:
    """A case file's bytes, refused before reading when larger than ``cap``."""
    try:
        with open(path, "rb") as f:
            raw = f.read(cap + 1)
    except OSError as exc:
        raise reading_error(exc, shown) from None
    if len(raw) > cap:
        raise CaseError(shown, "", f"file too large (over {cap} bytes; a case is at most {cap} bytes)")
    return raw
