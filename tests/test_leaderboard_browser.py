"""The leaderboard page in a real browser: Debian's chromium, headless, driven by playwright.

Needs `apt-get install -y chromium` and `pip install playwright` (its bundled browsers are never
downloaded: the test launches /usr/bin/chromium). Missing either is a failure, not a skip.
The screenshot is kept in pytest's tmp_path and copied to /tmp/leaderboard_screenshot.png.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from examples import good

from leaderboard import ROOT
from leaderboard.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT_COPY = Path("/tmp/leaderboard_screenshot.png")


def make_root(tmp_path: Path) -> Path:
    """A throwaway leaderboard folder holding copies of the committed submissions."""
    root = tmp_path / "leaderboard"
    shutil.copytree(ROOT / "submissions", root / "submissions")
    return root


def add_quick_run(root: Path, tmp_path: Path) -> None:
    """A `--limit 10` run of one task that scores 1.0 everywhere (added with --allow_partial):
    it would top any sort by Avg that mixed it with full runs."""
    results = good("results")
    results["config"]["limit"] = 10
    for entry in results["results"]["country_capital"].values():
        entry.update(acc=1.0, acc_std=0.0, acc_strict=1.0, acc_strict_std=0.0, n=10)
        entry["per_seed"] = [1.0, 1.0, 1.0]
    path = tmp_path / "quick.json"
    path.write_text(json.dumps(results))
    argv = ["add", str(path), "--name", "Quick", "--submitted-by", "t", "--root", str(root)]
    assert main([*argv, "--allow_partial"]) == 0


def _index(page, header: str) -> int:
    """A column's position, by its header text (the sort arrow is CSS, not text)."""
    index = page.eval_on_selector_all(
        "#leaderboard thead th", "(ths, name) => ths.findIndex(t => t.innerText === name)", header
    )
    assert index >= 0, f"no column {header!r}"
    return index


def _click_header(page, header: str) -> None:
    page.locator("#leaderboard thead th").nth(_index(page, header)).locator("button").click()


def _column(page, header: str, table: str = "#leaderboard") -> list[str]:
    """The `data-sort` keys of one column, top to bottom, for the visible rows."""
    index = _index(page, header)
    return page.eval_on_selector_all(
        f"{table} tbody tr:not([hidden])",
        "(rows, i) => rows.map(r => r.cells[i].dataset.sort)",
        index,
    )


def _groups(settings: list[str], keys: list[str]) -> dict[str, list[str]]:
    """The sort keys of each setting's rows, top to bottom; each setting's rows must be
    together (a sort ranks rows only against their own setting)."""
    groups: dict[str, list[str]] = {}
    for i, (setting, key) in enumerate(zip(settings, keys, strict=True)):
        assert setting in groups and settings[i - 1] == setting or setting not in groups, (
            f"the rows of {setting} are split"
        )
        groups.setdefault(setting, []).append(key)
    return groups


def _numbers_then_blanks(keys: list[str]) -> tuple[list[float], list[str]]:
    numbers = [float(k) for k in keys if k != ""]
    blanks = keys[len(numbers) :]
    assert all(k == "" for k in blanks), "empty cells must sort last"
    return numbers, blanks


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium with "
            "`apt-get update && apt-get install -y chromium` (the page is tested in a real browser)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install playwright (never `playwright install`)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


def test_page_sorts_filters_and_renders(browser, tmp_path):
    root = make_root(tmp_path)
    add_quick_run(root, tmp_path)
    assert main(["--root", str(root), "build"]) == 0
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((root / "index.html").as_uri())

    rows = page.locator("#leaderboard tbody tr")
    total = rows.count()
    assert total > 10
    assert page.locator("#shown").inner_text() == f"{total} of {total} ranked rows shown"

    # The --limit run is not among the ranked rows; it has a table of its own, with the reason.
    assert page.locator("#leaderboard tbody tr", has_text="Quick").count() == 0
    quick = page.locator("#unranked tbody tr", has_text="Quick")
    assert quick.count() == 4 and quick.first.is_visible()
    assert "--limit 10, test splits cut to 10 items" in quick.first.inner_text()

    # Sorting: the first click on a number column puts the best first, the second reverses;
    # each setting's rows stay together, so rows are ranked only against their own setting.
    before = _column(page, "Avg")
    _click_header(page, "Avg")
    after = _column(page, "Avg")
    groups = _groups(_column(page, "Setting"), after)
    assert len(groups) > 3
    for keys in groups.values():
        numbers, _ = _numbers_then_blanks(keys)
        assert numbers == sorted(numbers, reverse=True)
    assert after != before, "clicking the header did not change the order"
    assert max(float(k) for k in after if k) < 1.0  # the --limit run's 1.0 is not among them
    avg_header = page.locator("#leaderboard thead th").nth(_index(page, "Avg"))
    assert avg_header.get_attribute("aria-sort") == "descending"
    _click_header(page, "Avg")
    for keys in _groups(_column(page, "Setting"), _column(page, "Avg")).values():
        numbers, _ = _numbers_then_blanks(keys)
        assert numbers == sorted(numbers)
    assert avg_header.get_attribute("aria-sort") == "ascending"
    _click_header(page, "Model")
    for names in _groups(_column(page, "Setting"), _column(page, "Model")).values():
        assert names == sorted(names)
    _click_header(page, "Setting")
    settings = _column(page, "Setting")
    assert settings == sorted(settings)

    # Filters hide rows; both together leave the text → text patch rows: SmolLM2's, Gemma 3's
    # and the paper's Table 12 rows (LLaVA-1.5, Mantis-Fuyu, Idefics2).
    page.select_option("#filter-method", "patch")
    methods = page.eval_on_selector_all(
        "#leaderboard tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.method)"
    )
    assert methods and set(methods) == {"patch"}
    assert page.locator("#leaderboard tbody tr[hidden]").count() == total - len(methods)
    assert not page.locator("#leaderboard tbody tr[hidden]").first.is_visible()
    page.select_option("#filter-setting", "text_examples→text")
    visible = page.locator("#leaderboard tbody tr:not([hidden])")
    assert visible.count() == 5
    assert page.locator("#leaderboard tbody tr.reported:not([hidden])").count() == 3
    smollm2 = visible.filter(has_text="SmolLM2-135M-Instruct (CPU)")
    assert smollm2.count() == 1
    assert visible.filter(has_text="Gemma 3 270M (CPU)").count() == 1
    assert page.locator("#shown").inner_text() == f"5 of {total} ranked rows shown"
    # The filters hide not-ranked rows too: the --limit run's text → text patch row is left.
    assert page.locator("#unranked tbody tr:not([hidden])").count() == 1
    page.select_option("#filter-setting", "text_examples→image")
    assert page.locator("#unranked tbody tr:not([hidden])").count() == 0
    page.select_option("#filter-setting", "text_examples→text")

    # The model links to its submission file, next to the page.
    href = smollm2.locator("a").get_attribute("href")
    assert href.startswith("submissions/") and (root / href).is_file()

    # Reported rows look different from reproduced ones and carry a badge.
    page.select_option("#filter-setting", "")
    page.select_option("#filter-method", "")
    style = "el => getComputedStyle(el).fontStyle"
    assert page.locator("tr.reported td").first.evaluate(style) == "italic"
    assert page.locator("tr:not(.reported) td").first.evaluate(style) == "normal"
    assert page.locator("tr.reported .badge").count() == page.locator("tr.reported").count()

    # The overriding study's own table (the paper's Table 5 rows) sorts too; the filters above
    # belong to the main table and leave it alone.
    page.select_option("#filter-method", "patch")
    overriding = page.locator("#overriding tbody tr")
    assert overriding.count() == 3 and page.locator("#overriding tbody tr[hidden]").count() == 0
    syntax = page.eval_on_selector_all(
        "#overriding thead th", "ths => ths.findIndex(t => t.innerText === 'Syntax')"
    )
    page.locator("#overriding thead th").nth(syntax).locator("button").click()
    keys = page.eval_on_selector_all(
        "#overriding tbody tr", "(rows, i) => rows.map(r => r.cells[i].dataset.sort)", syntax
    )
    assert [float(k) for k in keys] == [0.59, 0.49, 0.15]
    page.select_option("#filter-method", "")

    # Offline: the page asked for nothing but itself.
    assert requests == [(root / "index.html").as_uri()]

    shot = tmp_path / "leaderboard.png"
    _click_header(page, "Avg")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
    shutil.copy(shot, SCREENSHOT_COPY)


EVIL = "x](javascript:alert(1)) | <img src=x onerror=alert(1)> **b**"


def test_markup_in_a_name_is_text_in_the_page(browser, tmp_path):
    """A submission named with markup: the page shows the name as text, loads no image and
    runs nothing (no dialog), and its link goes to the submission file."""
    root = make_root(tmp_path)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(good("results")))
    argv = ["--root", str(root), "add", str(results), "--name", EVIL, "--submitted-by", "x"]
    assert main([*argv, "--notes", "<script>alert(2)</script>", "--allow_partial"]) == 0
    assert main(["--root", str(root), "build"]) == 0
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto((root / "index.html").as_uri())
    page.wait_for_timeout(200)
    links = page.locator("#unranked a", has_text="javascript:alert(1)")  # one task: not ranked
    assert links.count() == 4
    assert {links.nth(i).inner_text() for i in range(4)} == {EVIL}
    href = links.first.get_attribute("href")
    assert href.startswith("submissions/x-javascript") and (root / href).is_file()
    assert page.locator("img").count() == 0
    assert dialogs == [] and requests == [(root / "index.html").as_uri()]
