"""The README's Python examples run as written (the drop-in snippet, which imports the original
module, is only checked for its import line)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
RUNNABLE = [b for b in BLOCKS if "from position_manager import" not in b]


def test_readme_has_examples() -> None:
    assert RUNNABLE, "README lost its runnable examples"


@pytest.mark.parametrize("code", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_readme_example_runs(code: str) -> None:
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})


def test_drop_in_import_line_works() -> None:
    drop_in = [b for b in BLOCKS if "from position_manager import" in b]
    assert drop_in
    after = [line for line in drop_in[0].splitlines() if "position_manager_rs" in line]
    assert after == ["from position_manager_rs import PositionManager, Position"]
    exec(after[0], {})
