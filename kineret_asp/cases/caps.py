"""How much input one case may be: caps checked while reading, before any parsing.

A case arrives as a file, on stdin, as a line of a batch (and later as an
HTTP body). Each is read with a cap on its bytes, so ``/dev/zero`` or an
endless pipe ends at once with one line instead of filling memory; and the
JSON values in it are counted before ``json.loads`` builds them, so a few
megabytes of ``[{},{},...]`` cannot become hundreds of megabytes of Python
objects. The case format itself caps each list at
:data:`~kineret_asp.knowledge.schema.MAX_LIST_ITEMS` entries (checked when the case is
validated).

The caps (README, "Reliability"):

- :data:`MAX_CASE_BYTES` bytes per case file or stdin;
- :data:`MAX_LINE_BYTES` bytes per line of a batch;
- :data:`MAX_JSON_VALUES` JSON values (objects, lists, strings, numbers) per case.
"""

from __future__ import annotations

import re
from typing import IO, Union

MAX_CASE_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_JSON_VALUES = 200_000

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def read_capped(stream: IO[bytes], cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of a stream, and whether there was more (nothing past cap+1 is read)."""
    chunks = []
    size = 0
    while size <= cap:
        block = stream.read(min(1 << 20, cap + 1 - size))
        if not block:
            break
        chunks.append(block)
        size += len(block)
    data = b"".join(chunks)
    return data[:cap], len(data) > cap


def json_values(raw: Union[bytes, str]) -> int:
    """An upper bound of the number of JSON values in a text, without parsing it.

    Every value but the first follows a comma or opens a container, so
    counting those bounds it; strings are taken out first only when the
    quick count is over the cap (a comma inside a string is not a value).
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    quick = 1 + data.count(b",") + data.count(b"[") + data.count(b"{")
    if quick <= MAX_JSON_VALUES:
        return quick
    bare = _STRING.sub(b'""', data)
    return 1 + bare.count(b",") + bare.count(b"[") + bare.count(b"{")


def too_many_values(raw: Union[bytes, str]) -> bool:
    """Whether a text holds more JSON values than a case may."""
    return json_values(raw) > MAX_JSON_VALUES
