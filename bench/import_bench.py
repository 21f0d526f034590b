"""Benchmark: what starting the command line costs, before any KB is read.

    python bench/import_bench.py [--repeat 15] [--against DIR]

Prints, for ``import kineret_asp.cli`` in a fresh interpreter, the import
time ``python -X importtime`` reports (the least of ``--repeat`` runs: the
machine is shared, the least is the steadiest), the package's modules it
loads and whether it loads clingo or the HTTP server's libraries (it must
not: ``--help`` and a usage error need neither). ``--against DIR`` measures
another checkout of the package in the same run, side by side, with the
ratio (for instance the commit before a change, from ``git worktree add``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("clingo", "fastapi", "uvicorn", "starlette", "pydantic", "psycopg")
PROBE = "import sys, kineret_asp.cli; print(__import__('json').dumps(sorted(m for m in sys.modules if m.split('.')[0] in {'kineret_asp', %s})))" % ", ".join(repr(h) for h in HEAVY)


def import_time(checkout: Path) -> int:
    """Microseconds ``import kineret_asp.cli`` takes in a fresh interpreter (cumulative, as -X importtime reports it)."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import kineret_asp.cli"], capture_output=True, text=True, env=env, check=True)
    line = next(x for x in proc.stderr.splitlines() if x.rstrip().endswith("| kineret_asp.cli"))
    return int(line.split("|")[1])


def loaded(checkout: Path) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    return json.loads(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True).stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--against", type=Path, help="Another checkout to measure in the same run.")
    args = parser.parse_args()
    checkouts = [("this checkout", ROOT)] + ([("--against", args.against.resolve())] if args.against else [])
    print(f"import kineret_asp.cli in a fresh interpreter, least of {args.repeat} runs; Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    best = {}
    for label, path in checkouts:
        best[label] = min(import_time(path) for _ in range(args.repeat))
        print(f"  {label:<16} {best[label] / 1000:8.1f} ms   ({path})")
    if args.against:
        print(f"  ratio              {best['this checkout'] / best['--against']:8.2f}x   (this checkout / --against)")
    modules = loaded(ROOT)
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    package = [m for m in modules if m.split(".")[0] == "kineret_asp"]
    print(f"  package modules loaded: {', '.join(package)}")
    print(f"  clingo or server libraries loaded: {', '.join(heavy) or 'none'}")
    ok = not heavy
    print(f"checks: {'the command line starts without clingo or the server' if ok else 'FAILED: the command line loads ' + ', '.join(heavy)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
