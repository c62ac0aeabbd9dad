"""`make report-check`: open the report in headless Chromium, screenshot it, and fail on a broken report.

Checks: every section heading is there, every embedded figure decodes as a PNG, and the screenshot Chromium
took of the page is not blank. Usage: `python -m rlhf.study.report_check [report.html]` (default: the newest
outputs/demo*/report.html). Needs Debian's `chromium` (`apt-get install chromium`).
"""
from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

SECTIONS = ("The answer", "Methods at matched KL", "What this run shows", "Metrics against beta", "RLHF across beta", "Tiny world vs ground truth",
            "Experiment 3: token entropy", "Toy bandit: Table 1", "Step times")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def check_html(page: str) -> list:
    problems = [f"missing section: {s}" for s in SECTIONS if s not in page]
    for i, data in enumerate(re.findall(r"src='data:image/png;base64,([^']+)'", page)):
        try:
            Image.open(io.BytesIO(base64.b64decode(data))).verify()
        except Exception as err:  # noqa: BLE001 - any decoding failure is a broken figure
            problems.append(f"figure {i} does not decode: {err}")
    return problems


def screenshot(report: Path, png: Path, width: int = 1280, height: int = 4000) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        raise SystemExit("report-check: chromium not found; install it with `apt-get install chromium`")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={png}", report.resolve().as_uri()], check=True, capture_output=True, timeout=120)


def main(argv: list) -> int:
    reports = [Path(a) for a in argv] or sorted(Path("outputs").glob("demo*/report.html"),
                                                key=lambda p: p.stat().st_mtime)[-1:]
    if not reports:
        print("report-check: no report found; run `make demo` first", file=sys.stderr)
        return 2
    report = reports[-1]
    problems = check_html(report.read_text())
    png = report.with_name("report_screenshot.png")
    screenshot(report, png)
    colours = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20)
    if colours is None or len(colours) < 50:
        problems.append(f"screenshot {png} looks blank ({len(colours or [])} colours)")
    for p in problems:
        print(f"report-check: {p}", file=sys.stderr)
    print(f"report-check: {report}: {'OK' if not problems else 'FAILED'}; screenshot {png}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
