"""The first screen of a report page as a picture (`genbench report --screenshot`): headless
chromium at 1280 x 900, the PNG marked with a fingerprint of the verdicts it shows, so that a
test can tell a stale picture from the study it claims to show."""

from __future__ import annotations

import io
from pathlib import Path

from .records import RecordError, atomic_write_bytes
from .study import STUDY_DIR, VERDICTS_FILE

VERDICTS = Path(STUDY_DIR) / VERDICTS_FILE


FINGERPRINT_KEY = "genbench-verdicts"  # the PNG text chunk naming the verdicts a screenshot shows


def fingerprint(run_dir) -> str:
    """The first 16 hex of the SHA-256 of RUN_DIR/study/verdicts.json ('' without one): a
    screenshot carries it, so a test can tell a stale picture from the study it shows."""
    import hashlib

    path = Path(run_dir) / VERDICTS
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else ""


def screenshot(page: Path, png: Path, run_dir, width: int = 1280, height: int = 900) -> Path:
    """The first `width` x `height` pixels of `page` in headless chromium, written to `png` with
    the study's fingerprint in a text chunk. RecordError when chromium is missing or fails."""
    import subprocess
    import tempfile

    from PIL import Image, PngImagePlugin

    from ..core import optional

    exe = optional.browser()
    if exe is None:
        raise RecordError("--screenshot needs chromium (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "shot.png"
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
        cmd += [f"--window-size={width},{height}", f"--screenshot={raw}", Path(page).resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not raw.exists():
            raise RecordError(f"chromium could not take the screenshot: {done.stderr.strip()[-300:]}")
        info = PngImagePlugin.PngInfo()
        info.add_text(FINGERPRINT_KEY, fingerprint(run_dir))
        buf = io.BytesIO()
        with Image.open(raw) as im:
            im.convert("RGB").quantize(colors=128).save(buf, format="PNG", optimize=True, pnginfo=info)
    return atomic_write_bytes(png, buf.getvalue())


def screenshot_fingerprint(png: Path) -> str | None:
    """The fingerprint a screenshot carries (None: none, or not a readable PNG)."""
    from PIL import Image

    try:
        with Image.open(png) as im:
            return im.text.get(FINGERPRINT_KEY)
    except (OSError, ValueError):
        return None
