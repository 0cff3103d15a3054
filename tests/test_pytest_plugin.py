"""The package's pytest plugin (``position_manager_rs.pytest_plugin``, a ``pytest11`` entry
point): its fixtures work in a bot's own test run, as docs/paper-exchange.md shows them.

Each test runs pytest in a subprocess on a throw-away test directory (``pytester``), so the
plugin is found the way a bot's test run finds it: through the installed entry point.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "paper-exchange.md"


def doc_example() -> str:
    """The example test module of docs/paper-exchange.md's fixtures section."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## pytest fixtures for your bot's tests") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


def test_the_documented_example_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bot=doc_example())
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3)


def test_the_fixtures_come_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    listed = run(pytester, "--fixtures")
    listed.stdout.fnmatch_lines(["*fixtures defined from position_manager_rs.pytest_plugin*"])
    for name in ("paper_exchange", "paper_manager", "frozen_clock"):
        assert re.search(rf"^{name} -- ", listed.stdout.str(), re.M), name
    markers = run(pytester, "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.paper_exchange(**options)*"])
    # and it can be turned off
    pytester.makepyfile(test_uses="def test_uses(paper_exchange):\n    pass\n")
    off = run(pytester, "-p", "no:position_manager_rs", "test_uses.py")
    off.stdout.fnmatch_lines(["*fixture 'paper_exchange' not found*"])


def test_markers_configure_the_fixtures_and_each_test_gets_fresh_ones(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_markers="""
        from datetime import datetime, timedelta

        import pytest

        from position_manager_rs import PaperExchange, PositionManager
        from position_manager_rs.testing import FrozenClock

        SEEN = []


        @pytest.mark.paper_exchange(seed=5, symbols=["ETH/USDT:USDT"], tick_seconds=120)
        @pytest.mark.paper_manager(0.035, missing_confirmations=3)
        def test_options(paper_exchange, paper_manager):
            assert isinstance(paper_exchange, PaperExchange) and paper_exchange.seed == 5
            assert paper_exchange.symbols == ("ETH/USDT:USDT",)
            assert isinstance(paper_manager, PositionManager)
            assert paper_manager.client is paper_exchange
            assert paper_manager.clock is paper_exchange.clock
            assert paper_manager.trailing_stop_percentage == 0.035
            paper_exchange.advance(2)
            assert paper_manager.clock.now() == datetime(2026, 1, 1, 0, 4)
            SEEN.append(paper_exchange)


        def test_defaults(paper_exchange, paper_manager):
            assert paper_exchange.seed == 0 and len(paper_exchange.symbols) == 4
            assert paper_manager.trailing_stop_percentage == 0.02
            assert paper_manager.clock.now() == datetime(2026, 1, 1)
            assert SEEN and SEEN[0] is not paper_exchange


        def test_frozen(frozen_clock):
            assert isinstance(frozen_clock, FrozenClock)
            assert frozen_clock.now() == datetime(2025, 1, 1)
            assert frozen_clock.advance(minutes=5) == datetime(2025, 1, 1, 0, 5)


        @pytest.mark.frozen_clock(datetime(2031, 2, 3, 4, 5, 6))
        def test_frozen_at(frozen_clock):
            assert frozen_clock.now() == datetime(2031, 2, 3, 4, 5, 6)


        def test_released_after_the_test():
            from position_manager_rs._core import _clock_is_frozen

            assert not _clock_is_frozen()
        """
    )
    result = run(pytester, "-v")
    result.assert_outcomes(passed=5)


def test_the_frozen_clock_fixture_survives_a_helper_that_freezes_the_clock(
    pytester: pytest.Pytester,
) -> None:
    # A bot's helper using testing.frozen_clock inside a test with the fixture used to leave
    # the clock unfrozen: the fixture's advance() then raised "the clock is not frozen" (found
    # by an audit).
    pytester.makepyfile(
        test_helper="""
        from datetime import datetime, timedelta

        from position_manager_rs import Position
        from position_manager_rs import testing


        def position_built_at(at):
            with testing.frozen_clock(at):
                return Position("BTC/USDT:USDT", "long", 100.0, 1.0, 10, 95.0, 115.0)


        def test_fixture_then_helper(frozen_clock):
            frozen_clock.advance(minutes=30)
            p = position_built_at(datetime(2024, 6, 1))
            assert p.entry_time == datetime(2024, 6, 1)
            assert frozen_clock.now() == datetime(2025, 1, 1, 0, 30)
            assert frozen_clock.advance(hours=2) == datetime(2025, 1, 1, 2, 30)


        def test_released_after_the_test():
            from position_manager_rs._core import _clock_is_frozen

            assert not _clock_is_frozen()
        """
    )
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2)


def test_bad_marker_arguments_are_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest


        @pytest.mark.paper_exchange(3)
        def test_positional(paper_exchange):
            pass


        @pytest.mark.paper_exchange(volatility=-1.0)
        def test_invalid(paper_exchange):
            pass


        @pytest.mark.frozen_clock("2025-01-01")
        def test_not_a_datetime(frozen_clock):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*TypeError: the paper_exchange marker takes keyword options only*",
            "*ValueError: volatility must be in [[]0, 1), got -1.0*",
            "*TypeError: start must be a naive datetime*",
        ],
        consecutive=False,
    )
