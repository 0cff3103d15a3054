"""Loading the golden fixtures computed by the original implementation.

They are test data of this repository: ``tests/fixtures/`` (``tests/fixtures/README.md`` says
where they come from and what they hold). Set ``PM_FIXTURES_DIR`` to replay another copy of the
set. A missing or unreadable fixture is an error, never a skip: a module that needs one fails to
import, so its tests fail instead of vanishing from the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: The fixtures kept in the repository.
REPO_FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: Where :func:`load` reads them: ``$PM_FIXTURES_DIR``, else :data:`REPO_FIXTURES`.
FIXTURES = Path(os.environ.get("PM_FIXTURES_DIR") or REPO_FIXTURES)
#: Every fixture file the tests replay.
NAMES = ("formatting.json", "indicators.json", "position_traces.json", "exit_signals.json")


class MissingFixtureError(FileNotFoundError):
    """A golden fixture the tests need is not there."""


def load(name: str) -> Any:
    """The parsed fixture ``name`` (e.g. ``"position_traces.json"``); raises
    :class:`MissingFixtureError` when it is missing."""
    path = FIXTURES / name
    if not path.is_file():
        raise MissingFixtureError(
            f"golden fixture {name} not found in {FIXTURES} "
            "(it belongs in tests/fixtures/; PM_FIXTURES_DIR overrides the directory)"
        )
    return json.loads(path.read_text(encoding="utf-8"))
