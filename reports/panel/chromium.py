"""Where the system's Chromium is and how to start it headless on this kind of machine.

The panel's browser test and the stability benchmark drive Debian's Chromium through
Playwright (never a browser Playwright downloads: benches and CI have only the package
registries). Without the background-networking flags a closed network refuses Chromium's
own connections many at a time; as root it needs --no-sandbox.
"""

from __future__ import annotations

import os

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def find() -> str | None:
    """$TRACTION_RIG_CHROMIUM, else the first system Chromium there is."""
    path = os.environ.get("TRACTION_RIG_CHROMIUM") or next((p for p in CANDIDATES if os.path.exists(p)), None)
    return path if path and os.path.exists(path) else None
