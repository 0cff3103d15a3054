"""The docs agree with the code and with each other: the README's Documentation list and Layout,
links, constructor options, event kinds, and the reliability page's claims about xfail markers.
(The examples' outputs are checked by tests/test_doc_examples.py.)"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from position_manager_rs import PositionManager

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS, ROOT / "tests" / "fixtures" / "README.md"]


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : None if end < 0 else end]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_documentation_list_names_every_page() -> None:
    listed = set(re.findall(r"\(docs/([\w-]+\.md)\)", section(README, "Documentation")))
    assert listed == {p.name for p in DOCS}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target} does not exist"
        assert ROOT in file.parents or file == ROOT, f"{page.name}: {target} is outside the repo"
        if anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), re.M)
            assert anchor in {slug(h) for h in headings}, f"{page.name}: no heading #{anchor}"


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout"
)
def test_the_layout_names_every_top_level_directory() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    directories = {f.split("/")[0] for f in files if "/" in f}
    layout = section(README, "Layout")
    named = set(re.findall(r"^([\w.]+)/ ", layout, re.M))
    assert named == directories


def options() -> list[str]:
    return list(inspect.signature(PositionManager).parameters)[2:]


def test_every_option_is_documented_in_the_readme_and_the_reference() -> None:
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    signature_block = configuration[: configuration.index("```\n\n")]
    for name in options():
        assert f"`{name}`" in README, f"README's option table lacks {name}"
        assert f"    {name}=" in signature_block, f"configuration.md's signature lacks {name}"
        assert re.search(rf"^\| [^|]*`{name}`", configuration, re.M), f"no row for {name}"
    assert "ticker_retry_delays" in options() and options()[-1] == "journal_sync"


def test_event_kinds_are_the_cores() -> None:
    events_rs = (ROOT / "core" / "src" / "events.rs").read_text(encoding="utf-8")
    kinds = set(re.findall(r'EventKind::\w+ => "(\w+)"', events_rs))
    assert len(kinds) >= 10
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = configuration[configuration.index("| kind | when | reasons |") :]
    table = table[: table.index("\n\n")]
    listed = set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M))
    assert listed == kinds, (sorted(kinds - listed), sorted(listed - kinds))


def test_the_reliability_page_is_right_about_xfail_markers() -> None:
    reliability = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    marked = [
        p.name
        for p in (ROOT / "tests").glob("*.py")
        if p.name != Path(__file__).name and "mark.xfail" in p.read_text(encoding="utf-8")
    ]
    if "No test is marked `xfail` today" in reliability:
        assert marked == []
        assert "known gap below" not in reliability
    else:  # pragma: no cover - a known gap is documented with its xfail test
        assert marked
