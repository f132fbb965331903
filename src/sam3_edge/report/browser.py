"""Headless Chromium over a local HTML file: the DOM after rendering, or a screenshot (checks of the reports).

Debian/Ubuntu package ``chromium`` (``apt-get install -y chromium``). The browser runs offline and isolated: a
fresh profile directory, no first-run, no background networking, no component updates, no sync, no QUIC.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable on PATH, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError(f"no Chromium on PATH (looked for {', '.join(CANDIDATES)}); apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="sam3-edge-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def dump_dom(html_file: str | Path, *, timeout: float = 120) -> str:
    """The serialized DOM of ``html_file`` after Chromium loaded and rendered it."""
    return _run(["--dump-dom", Path(html_file).resolve().as_uri()], timeout).stdout


def screenshot(
    html_file: str | Path, png: str | Path, *, width: int = 1280, height: int = 1600, timeout: float = 120
) -> Path:
    """Render ``html_file`` into ``png`` (``width`` x ``height`` viewport)."""
    png = Path(png).resolve()
    _run([f"--screenshot={png}", f"--window-size={width},{height}", Path(html_file).resolve().as_uri()], timeout)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {png}")
    return png
