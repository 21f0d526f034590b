"""The public outputs, recorded: what every public face answers on every example and on 2,000 generated cases.

The command line (evaluate in four formats, batch, missing and what-if),
the Python API (``evaluate``, ``evaluate_many``, ``batch_evaluate``,
``missing``, ``what_if``) and the HTTP API (``/evaluate``, ``/missing``,
``/what-if``) are run, and each answer kept as the SHA-256 of its bytes.
Two things are masked first, because they say where and what the KB is,
not what it decides: every SHA-256 inside an answer (the rules' and the
framework's hashes in the provenance) and the KB folder's absolute path.

    python -m tests.contracts.outputs            # record (writes tests/data/contracts/outputs.json)

``test_outputs_unchanged.py`` compares a fresh run with the record; a change
meant to alter an output records again, in the same commit, saying why.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "contracts"
RECORD = DATA / "outputs.json"
COMMAND_EXAMPLES = DATA / "command_examples.txt"  # the examples the command-line records run, as they were at the first record
GENERATED = DATA / "generated_cases.jsonl.gz"
KB_DIR = ROOT / "kb"
EXAMPLES_DIR = KB_DIR / "policies" / "IP0243" / "2024-06-01" / "cases"
CHANGE = [{"op": "set", "path": "request", "value": "continuation"}]  # one what-if for every example
COMMAND_SAMPLE = 6  # examples also run through `missing` and `what-if` as commands (a process each)

_SHA = re.compile(rb"[0-9a-f]{64}")


def examples() -> list[Path]:
    """Every example case of the packaged KB (JSON, FHIR Bundles and .lp), in a fixed order."""
    return sorted(p for p in EXAMPLES_DIR.rglob("*") if p.suffix in (".json", ".lp") and p.is_file())


def command_examples() -> list[Path]:
    """The examples the command line's records run (one process for all): those of the first record.

    An example added later gets its own Python API and HTTP records, and
    leaves these as they were, so that recording again after adding
    examples only adds records: a changed record still means a changed
    output.
    """
    if not COMMAND_EXAMPLES.exists():
        return examples()
    names = COMMAND_EXAMPLES.read_text(encoding="utf-8").split()
    return sorted(EXAMPLES_DIR / n for n in names if (EXAMPLES_DIR / n).is_file())


def generated() -> list[dict]:
    """The 2,000 generated cases, kept as drawn when the record was first made."""
    with gzip.open(GENERATED, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def masked(data: bytes | str) -> bytes:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    raw = raw.replace(str(KB_DIR).encode("utf-8"), b"<kb>")
    return _SHA.sub(b"<sha256>", raw)


def digest(data: bytes | str) -> str:
    return hashlib.sha256(masked(data)).hexdigest()


def name(path: Path) -> str:
    return path.relative_to(EXAMPLES_DIR).as_posix()


def command(*args: str, stdin: bytes | None = None) -> bytes:
    env = dict(os.environ, KINERET_ASP_PUBLIC_API=os.environ.get("KINERET_ASP_PUBLIC_API", ""))
    proc = subprocess.run([sys.executable, "-m", "kineret_asp", *args], input=stdin, capture_output=True, env=env, cwd=ROOT)
    return proc.stdout + f"\n--- exit {proc.returncode} ---\n".encode()  # stderr holds timings (batch)


def answer(call: Any) -> str:
    """What a call returns, or the error it raises (its class and its one line): both are the contract."""
    from kineret_asp import KineretError

    try:
        return call()
    except KineretError as e:
        return f"{type(e).__name__}: {e}"


def outputs() -> dict[str, str]:
    """Every recorded answer's digest, by a name that says which face, which input and which format."""
    return dict(_outputs())


def _outputs() -> Iterator[tuple[str, str]]:
    from fastapi.testclient import TestClient

    from kineret_asp import batch_evaluate, evaluate, evaluate_many, missing, what_if
    from kineret_asp.server import create_app

    files = examples()
    at_first = command_examples()
    relative = [str(p.relative_to(ROOT)) for p in at_first]
    for fmt in ("text", "json", "markdown", "html"):
        yield f"cli evaluate --format {fmt} (every example)", digest(command("evaluate", "--kb", "kb", "--format", fmt, *relative))
    for path in at_first[:: max(1, len(at_first) // COMMAND_SAMPLE)][:COMMAND_SAMPLE]:
        rel = str(path.relative_to(ROOT))
        yield f"cli missing --format json {name(path)}", digest(command("missing", "--kb", "kb", "--format", "json", rel))
        yield f"cli missing {name(path)}", digest(command("missing", "--kb", "kb", rel))
        yield f"cli what-if {name(path)}", digest(command("what-if", "--kb", "kb", "--set", "request=continuation", rel))
    client = TestClient(create_app(KB_DIR))
    for path in files:
        key = name(path)
        yield f"api evaluate {key}", digest(answer(lambda: evaluate(path, KB_DIR).to_json()))  # noqa: B023 (called at once)
        yield f"api missing {key}", digest(answer(lambda: json.dumps(missing(path, KB_DIR).to_dict(), sort_keys=True)))  # noqa: B023
        yield f"api what_if {key}", digest(answer(lambda: json.dumps(what_if(path, CHANGE, KB_DIR).to_dict(), sort_keys=True)))  # noqa: B023
        if path.suffix == ".json":
            body = path.read_bytes()
            yield f"http /evaluate {key}", digest(client.post("/evaluate", content=body, headers={"content-type": "application/json"}).content)
            yield f"http /missing {key}", digest(client.post("/missing", content=body, headers={"content-type": "application/json"}).content)
            case = json.loads(body)
            if case.get("resourceType") is None:
                reply = client.post("/what-if", json={"case": case, "changes": CHANGE})
                yield f"http /what-if {key}", digest(reply.content)
    cases = generated()
    yield "api evaluate_many (generated)", digest("\n".join(d.to_json() for d in evaluate_many(cases, KB_DIR)))
    yield "api batch_evaluate (generated)", digest("\n".join(json.dumps(r.to_dict(), sort_keys=True) for r in batch_evaluate(cases, KB_DIR)))
    lines = "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in cases).encode("utf-8")
    yield "cli batch (generated)", digest(command("batch", "--kb", "kb", "-", "-o", "-", stdin=lines))
    yield "http /batch (generated, first 500)", digest(client.post("/batch", content=b"".join(lines.splitlines(keepends=True)[:500]), headers={"content-type": "application/x-ndjson"}).content)


def draw_generated() -> list[dict]:
    """2,000 cases: 1,500 as the batch bench draws them, 500 rheumatoid-arthritis requests with 2-5 history entries."""
    import random

    sys.path.insert(0, str(ROOT / "bench"))
    from cases import CSDMARDS, OTHER_BIOLOGICS, OUTCOMES, PREFERRED, generate  # type: ignore[import-not-found]

    out = list(generate(1500, seed=20240601))
    rng = random.Random(20240602)
    for n in range(1500, 2000):
        case: dict[str, Any] = {"id": f"case-{n}", "indication": "rheumatoid_arthritis", "plan": rng.choice(["employer_group", "individual_family"])}
        case["prescriber_specialties"] = [rng.choice(["rheumatology", "rheumatology", "dermatology"])]
        history = []
        for _ in range(rng.randint(2, 5)):
            drug = rng.choice(CSDMARDS + PREFERRED + OTHER_BIOLOGICS[:6])
            entry: dict[str, Any] = {"drug": drug, "outcome": rng.choice(OUTCOMES)}
            if rng.random() < 0.7:
                entry["months"] = rng.choice([1, 2, 3, 4, 6, 12])
            if rng.random() < 0.05:
                entry["sample"] = True
            history.append(entry)
        case["medication_history"] = history
        if rng.random() < 0.15:
            case["current_medications"] = [rng.choice(CSDMARDS + PREFERRED + ["prednisone"])]
        out.append(case)
    return out


def record() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    if not GENERATED.exists():
        with gzip.GzipFile(GENERATED, "wb", mtime=0) as f:
            f.write("".join(json.dumps(c, separators=(",", ":"), sort_keys=True) + "\n" for c in draw_generated()).encode("utf-8"))
    if not COMMAND_EXAMPLES.exists():
        COMMAND_EXAMPLES.write_text("".join(name(p) + "\n" for p in examples()), encoding="utf-8")
    RECORD.write_text(json.dumps(outputs(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    record()
