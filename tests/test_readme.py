"""The README's Python example runs and says what it claims."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs_and_matches_its_comments():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    assert scope["eq"].overloaded is False
    np.testing.assert_allclose(scope["eq"].demands, [2.5, 2.5, 2.5, 2.5, 10.0])
    assert scope["decision"].action == 4.0


def test_readme_starts_with_the_two_commands():
    lines = [ln for ln in README.read_text().splitlines() if ln.startswith("bash scripts/")]
    assert [ln.split()[1] for ln in lines[:2]] == ["scripts/main.sh", "scripts/test.sh"]


def test_readme_images_are_committed_files():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert images
    for path in images:
        assert (README.parent / path).is_file(), path


def test_readme_fits_a_screen_budget_and_its_links_resolve():
    text = README.read_text()
    assert len(text) <= 15_000, len(text)
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert "docs/theory.md" in links
    for link in links:
        if "://" not in link:
            assert (README.parent / link).exists(), link


def test_docs_cite_no_file_outside_the_repository():
    docs = [README, *(README.parent / "docs").glob("*.md")]
    src = (README.parent / "src").rglob("*.py")
    for path in [*docs, *src]:
        assert "SPEC §" not in path.read_text(), path
