"""``kineret-asp new-policy``: the first version of a policy for another drug, the smallest that passes ``check``.

The files are the framework's templates (``kb/framework/new_policy/*.lp.in``)
with the policy's number, its drug's key and its effective date filled in;
every word of them is the KB's. The folder is built aside and moved into
place whole, so that a failure leaves nothing behind, and an existing policy
is never overwritten (``new-version`` starts its next version).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import KineretError
from ..knowledge.base import load_tree
from ..knowledge.layout import FRAMEWORK, default_kb_path, display_path
from ..templates import fill
from .new_version import parse_date

TEMPLATES = "new_policy"  # the framework's folder of a new policy's files
SUFFIX = ".lp.in"
POLICY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}\Z")
DRUG_KEY = re.compile(r"[a-z][a-z0-9_]{0,59}\Z")


class NewPolicyError(KineretError):
    """A new policy that cannot be started (one line)."""


@dataclass(frozen=True)
class NewPolicy:
    policy: str
    drug: str
    effective: str
    folder: Path
    files: tuple[Path, ...]


def new_policy(policy: str, drug: str, effective: str, kb: Path | str | None = None) -> NewPolicy:
    """Write ``policies/<policy>/<effective>/`` from the framework's templates, with ``drug`` as the drug it authorizes."""
    if not POLICY_ID.match(policy):
        raise NewPolicyError(f"policy {policy!r}: expected a policy number of letters, digits, '-' and '_' (at most 40)")
    if not DRUG_KEY.match(drug):
        raise NewPolicyError(f"--drug {drug!r}: expected a drug key: lower-case letters, digits and '_', starting with a letter")
    parse_date(effective)
    root = Path(kb) if kb is not None else default_kb_path()
    tree = load_tree(root)
    if policy in tree.policies:
        raise NewPolicyError(f"policy {policy} is already in {display_path(tree.root)}: start its next version with kineret-asp new-version {policy} --effective {effective}")
    templates = sorted((tree.root / FRAMEWORK / TEMPLATES).glob(f"*{SUFFIX}"))
    if not templates:
        raise NewPolicyError(f"{display_path(tree.root / FRAMEWORK / TEMPLATES)}: no {SUFFIX} templates")
    words = tree.versions[0].vocabulary.word if tree.versions else None
    if words is None:
        raise NewPolicyError(f"{display_path(tree.root)}: no version to read the framework's words with")
    values = {"policy": policy, "drug": drug, "effective": effective}
    for name in ("title", "indication", "indication_words", "criterion_words"):
        values[name] = words(f"new_policy_{name}", **values)
    values["drug_words"] = drug.replace("_", " ").capitalize()
    folder = tree.root / "policies" / policy / effective
    aside = Path(tempfile.mkdtemp(prefix=".new-policy-", dir=tree.root))
    try:
        written = []
        for template in templates:
            target = aside / template.name[: -len(".in")]  # policy.lp.in -> policy.lp
            target.write_text(fill(template.read_text(encoding="utf-8"), values), encoding="utf-8")
            written.append(folder / target.name)
        folder.parent.mkdir(parents=True, exist_ok=True)
        aside.rename(folder)
    except OSError as exc:
        shutil.rmtree(aside, ignore_errors=True)
        raise NewPolicyError(f"{display_path(folder)}: cannot write: {exc.strerror or exc}") from None
    return NewPolicy(policy, drug, effective, folder, tuple(written))


def render(result: NewPolicy) -> str:
    """What new-policy wrote, one line per file, and what to do next (the KB's words)."""
    kb = load_tree(result.folder).latest(result.policy)
    w = kb.vocabulary.word
    lines = [w("new_policy_written", folder=display_path(result.folder), drug=result.drug, effective=result.effective)]
    lines += [f"  {display_path(path)}" for path in result.files]
    lines.append(w("new_policy_next", folder=display_path(result.folder)))
    return "\n".join(lines) + "\n"
