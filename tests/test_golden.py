"""The golden fixtures are part of the repository, and a missing one fails instead of skipping."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from golden import NAMES, REPO_FIXTURES, MissingFixtureError, load


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_in_the_repository(name: str) -> None:
    assert (REPO_FIXTURES / name).is_file()
    assert "meta" in load(name), f"{name} lost its meta object"


def test_a_missing_fixture_raises() -> None:
    with pytest.raises(MissingFixtureError, match=r"no_such\.json not found"):
        load("no_such.json")


def test_a_module_whose_fixture_is_missing_fails_the_run(tmp_path: Path) -> None:
    # A replay module whose fixture is gone must turn the run red (a collection error), not
    # skip: run pytest on such a module with PM_FIXTURES_DIR pointing at an empty directory.
    module = tmp_path / "test_needs_fixture.py"
    module.write_text(
        textwrap.dedent(
            """
            from golden import load

            DATA = load("formatting.json")

            def test_replay():
                assert DATA
            """
        )
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    tests_dir = Path(__file__).resolve().parent
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=tmp_path,
        env={**os.environ, "PM_FIXTURES_DIR": str(empty), "PYTHONPATH": str(tests_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, result.stdout
    assert "MissingFixtureError" in result.stdout, result.stdout
    assert "skipped" not in result.stdout


def test_fixtures_are_the_recorded_set() -> None:
    # tests/fixtures/README.md records each file's SHA-256; an edited fixture is a failure.
    readme = (REPO_FIXTURES / "README.md").read_text(encoding="utf-8")
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^ +([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert sorted(recorded) == sorted(NAMES)
    for name, digest in recorded.items():
        assert hashlib.sha256((REPO_FIXTURES / name).read_bytes()).hexdigest() == digest, name
