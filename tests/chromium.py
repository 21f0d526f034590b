"""Headless Chromium for the tests that look at a page in a real browser: Debian's package (``.ci/install-browser``).

One place says how the browser is found and started, so that the tests that
render a page (the review page, the literate trace, the workbench) start it
the same way: no network of its own, a private profile, no sandbox (CI runs
as root).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

INSTALL = "no Chromium on this machine: install it with .ci/install-browser (apt-get install chromium) to run the browser test"


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def command(profile: Path, *arguments: str) -> list[str]:
    """The browser's command line: headless, nothing fetched in the background, ``profile`` as its user folder, then ``arguments``."""
    return [
        str(chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        *arguments,
    ]


def dump_dom(page: Path, profile: Path) -> tuple[int, str]:
    """The exit code and the DOM headless Chromium builds from a page (its process group ended however it goes)."""
    process = subprocess.Popen(
        command(profile, "--dump-dom", page.resolve().as_uri()),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
        env={**os.environ, "HOME": str(profile.parent)},
    )
    try:
        out, _ = process.communicate(timeout=120)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    return process.returncode, out
