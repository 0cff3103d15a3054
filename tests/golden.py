"""Loading the golden fixtures computed by the original implementation.

They live beside the repository in `shared/fixtures` (set ``PM_FIXTURES_DIR`` to point elsewhere).
A module that needs them calls :func:`load`, which skips the module when they are missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(
    os.environ.get("PM_FIXTURES_DIR") or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)


def load(name: str) -> Any:
    """The parsed fixture `name` (e.g. ``"position_traces.json"``); skips the calling module if
    the fixtures are not there."""
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(
            f"golden fixture {name} not found in {FIXTURES} (set PM_FIXTURES_DIR)",
            allow_module_level=True,
        )
    return json.loads(path.read_text())
