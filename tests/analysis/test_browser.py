"""The report renders in a real browser: every figure decodes and the threshold table is there.

Headless Chromium (Debian's ``chromium`` + ``chromium-driver``, installed by ``.ci/run``)
loads ``report.html`` from disk through WebDriver; the assertions read the rendered DOM, so
a broken data URI (an image the browser cannot decode has natural size 0) or a table the
HTML does not actually contain fails the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from swalab.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("SWALAB_REQUIRE_BROWSER") == "1":  # CI: a missing browser is a failure
        pytest.fail(
            "SWALAB_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed", pytrace=False
        )
    pytest.skip(
        "chromium and chromedriver are not installed (.ci/run installs them)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
)


@pytest.fixture()
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _image_sizes(browser, page: Path) -> list[list]:
    browser.get(page.resolve().as_uri())
    return browser.execute_script(
        "return Array.from(document.images).map(i => "
        "[i.alt, i.complete, i.naturalWidth, i.naturalHeight]);"
    )


def test_a_broken_figure_is_seen(tmp_path, browser):
    """The check below can fail: an undecodable PNG has natural size 0 in the browser."""
    page = tmp_path / "broken.html"
    page.write_text("<img alt='broken' src='data:image/png;base64,iVBORw0KGgoAAAA'>")
    [[alt, _, width, height]] = _image_sizes(browser, page)
    assert alt == "broken" and width == 0 and height == 0


@pytest.mark.slow
def test_report_renders_every_figure_and_the_threshold_table(tmp_path, browser):
    out = tmp_path / "sweep"
    args = [
        "run",
        "severity_model_based",
        "--out",
        str(out),
        "--set",
        "seeds=2",
        "--set",
        "grid.lam={from: 0, to: 1, step: 0.1}",
    ]
    assert main(args) == 0
    assert main(["report", str(out)]) == 0
    images = _image_sizes(browser, out / "report.html")
    titles = [alt for alt, *_ in images]
    for required in ("Fig. 1", "Fig. 2", "Fig. 3", "Fig. 4", "Load over time", "Phase heatmap"):
        assert any(t.startswith(required) for t in titles), (required, titles)
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, alt
    rows = browser.execute_script(
        "const t = document.getElementById('thresholds');"
        "return t ? Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText)) : null;"
    )
    assert rows is not None, "no threshold table in the rendered page"
    header, body = rows[0], rows[1:]
    assert "λ_c" in header and "λ*" in header and "λ̃" in header
    assert len(body) == 12  # 6 β × 2 scorers
    lam_c = [float(r[header.index("λ_c")]) for r in body]
    assert all(0.0 < x < 1.0 for x in lam_c)


def test_the_leaderboard_renders_and_sorts(tmp_path, browser):
    from swalab.analysis.leaderboard import write_leaderboard

    out = tmp_path / "suite"
    assert main(["run", "suite_baselines", "--out", str(out)]) == 0
    page = write_leaderboard([out], tmp_path / "board.html")
    images = _image_sizes(browser, page)
    assert images and all(complete and w > 0 and h > 0 for _, complete, w, h in images), images

    def column(name):
        return browser.execute_script(
            "const t = document.getElementById('scorecards');"
            "const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.innerText.trim() == "
            "arguments[0]);"
            "return Array.from(t.tBodies[0].rows).map(r => r.cells[i].innerText);",
            name,
        )

    assert len(column("mode")) == 19  # 6 baselines × 2 β, 3 outsider tests, 2 × 2 dilemmas
    header = browser.find_element("xpath", "//table[@id='scorecards']//th[text()='λ_c']")
    header.click()
    values = [v for v in column("λ_c") if v != "–"]
    assert values == sorted(values, key=float) and len(values) >= 4
    assert column("λ_c")[-1] == "–"  # rows without a switch sort last
    header.click()
    values = [v for v in column("λ_c") if v != "–"]
    assert values == sorted(values, key=float, reverse=True)
