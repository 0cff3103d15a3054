"""The Python examples of the README and docs/ run as written and print what they show.

A ```` ```python ```` block is run unless the line before it is ``<!-- example: not run -->``
(fragments, examples that need network access or API keys, and pytest modules, which
``tests/test_pytest_plugin.py`` runs). The comment lines right after a ``print(...)`` line are
that call's output, ``# `` removed: the block's whole standard output must be exactly those lines,
in order (a block that shows no output must print nothing), and a block must log no warning.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = "<!-- example: not run -->"
_BLOCK = re.compile(r"(?:^|\n)([^\n]*)\n```python\n(.*?)```", re.S)


@dataclass
class Example:
    path: Path
    index: int
    code: str
    run: bool

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}#{self.index}"

    def expected_output(self) -> list[str]:
        """The comment lines that follow each ``print(`` line, without their ``# ``."""
        out: list[str] = []
        lines = self.code.splitlines()
        for i, line in enumerate(lines):
            if not line.lstrip().startswith("print("):
                continue
            for follow in lines[i + 1 :]:
                text = follow.strip()
                if not text.startswith("# "):
                    break
                out.append(text[2:])
        return out


def examples() -> list[Example]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for index, (before, code) in enumerate(_BLOCK.findall(text)):
            found.append(Example(path, index, code, before.strip() != NOT_RUN))
    return found


EXAMPLES = examples()
RUNNABLE = [e for e in EXAMPLES if e.run and "from position_manager import" not in e.code]


def test_the_readme_has_runnable_examples_with_output() -> None:
    readme = [e for e in RUNNABLE if e.path.name == "README.md"]
    assert len(readme) >= 2, "README lost its runnable examples"
    assert any(e.expected_output() for e in readme), "README shows no output any more"


@pytest.mark.parametrize("example", RUNNABLE, ids=[e.id for e in RUNNABLE])
def test_example_prints_what_it_shows(example: Example, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(compile(example.code, str(example.path), "exec"), {"__name__": "doc_example"})
    assert stdout.getvalue().splitlines() == example.expected_output()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [], f"{example.id} logged warnings"


def test_expected_output_is_read_from_comments_after_print() -> None:
    # The reader of the convention above: a wrong reading would make the comparison vacuous.
    code = "x = 1\nprint(x)\n# 1\n# two\nx += 1  # not output\nprint(x)\n#   2\n"
    assert Example(ROOT, 0, code, True).expected_output() == ["1", "two", "  2"]


def test_drop_in_import_line_works() -> None:
    drop_in = [e for e in EXAMPLES if "from position_manager import" in e.code]
    assert drop_in
    after = [line for line in drop_in[0].code.splitlines() if "position_manager_rs" in line]
    assert after == ["from position_manager_rs import PositionManager, Position"]
    exec(after[0], {})
