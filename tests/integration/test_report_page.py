"""The report page in a real headless Chromium (Debian's, installed by scripts/install-servers.sh):
the DOM a browser builds holds the culprit and the propagation path, and the phone-width
screenshot is not blank."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from warroom.gym import simulator
from warroom.pipeline import investigate
from warroom.report.charts import charts_for
from warroom.report.html import to_html

FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-background-networking",  # this machine's network is closed
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed: run scripts/install-servers.sh")
    return found


def _pixels(png: bytes) -> bytes:
    """The decompressed scanlines of a PNG (enough to tell a blank page from a drawn one)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data, at = b"", 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind = png[at + 4 : at + 8]
        if kind == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    return zlib.decompress(data)


def test_the_report_page_renders_the_culprit_and_the_path(tmp_path: Path) -> None:
    chromium = _chromium()
    case = simulator.generate("shop", "db-pool-exhaustion", 2)
    found = investigate(case.incident, case.store, case.baseline, case.graph_edges)
    report = found.report
    page = tmp_path / "report.html"
    page.write_text(to_html(report, charts_for(report, case.store, case.baseline, found.findings)))
    case.store.close()
    profile = [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [chromium, *profile, "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert report.culprit is not None
    assert report.culprit.service in dom
    assert all(service in dom for service in report.culprit.path)
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *profile, "--window-size=412,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert len(set(_pixels(shot.read_bytes()))) > 32  # many colours drawn, not one blank page
