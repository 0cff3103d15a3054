"""The hand-written stubs catch a bot's mistakes: mypy, run on a user's code, reports a misspelt
manager method, an object that is no exchange client and a wrong clock, and accepts correct use.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is a dev dependency")


# How mypy names an optional clock: it writes X | Y only for code it checks for 3.10+ (it checks
# for the running Python).
OPTIONAL_CLOCK = "ManualClock | None" if sys.version_info >= (3, 10) else "Optional[ManualClock]"


def mypy_errors(tmp_path: Path, code: str) -> list[str]:
    """mypy's error lines for ``code`` as ``"<line>: <message>"`` (ruff-style, no path)."""
    source = tmp_path / "bot.py"
    source.write_text(textwrap.dedent(code), encoding="utf-8")
    # mypy raises the recursion limit of the whole process (to 2**14) and leaves it raised; on
    # Python 3.9 and 3.10, where every Python call also takes C stack, a runaway recursion in a
    # later test then overflows the stack (a segfault ending the session) before it reaches the
    # limit. The limit is put back.
    limit = sys.getrecursionlimit()
    try:
        stdout, stderr, _status = mypy_api.run(
            [
                "--no-error-summary",
                "--show-error-codes",
                "--no-color-output",
                "--cache-dir",
                str(tmp_path / ".mypy_cache"),
                "--config-file",
                "",
                str(source),
            ]
        )
    finally:
        sys.setrecursionlimit(limit)
    assert not stderr, stderr
    return [
        f"{m.group(1)}: {m.group(2)}"
        for m in re.finditer(r"^\S*bot\.py:(\d+): error: (.*)$", stdout, re.M)
    ]


@pytest.mark.timeout(300)
def test_mistakes_are_mypy_errors(tmp_path: Path) -> None:
    errors = mypy_errors(
        tmp_path,
        """\
        from position_manager_rs import ManualClock, PaperExchange, PositionManager

        paper = PaperExchange(seed=1)
        pm = PositionManager(paper, 0.02)
        pm.update_position()
        pm.get_open_position_count()
        PositionManager(object())
        PositionManager(paper, clock="2026-01-01")
        pm.clock.advance(60)
        ManualClock().advance("60")
        """,
    )
    # (line, error code, words of the message): exact wording varies between mypy versions.
    expected = [
        (5, "attr-defined", '"PositionManager" has no attribute "update_position"'),
        (6, "attr-defined", '"PositionManager" has no attribute "get_open_position_count"'),
        (7, "arg-type", '"object"; expected "ExchangeClient"'),
        (8, "arg-type", 'Argument "clock" to "PositionManager" has incompatible type "str"'),
        (9, "union-attr", f'Item "None" of "{OPTIONAL_CLOCK}" has no attribute "advance"'),
        (10, "arg-type", 'Argument 1 to "advance" of "ManualClock" has incompatible type "str"'),
    ]
    assert len(errors) == len(expected), errors
    for error, (line, code, words) in zip(errors, expected):
        assert error.startswith(f"{line}: "), errors
        assert error.endswith(f"[{code}]") and words in error, error


@pytest.mark.timeout(300)
def test_correct_use_type_checks(tmp_path: Path) -> None:
    errors = mypy_errors(
        tmp_path,
        """\
        from datetime import datetime, timedelta
        from unittest.mock import Mock

        from position_manager_rs import (
            CcxtClient,
            ExchangeClient,
            ManualClock,
            PaperExchange,
            Position,
            PositionManager,
            TradingClient,
        )

        clock = ManualClock(datetime(2026, 1, 1))
        paper = PaperExchange(seed=1, clock=clock)
        trading: TradingClient = paper
        watching: ExchangeClient = paper
        pm = PositionManager(paper, 0.02, missing_confirmations=2, clock=paper.clock)
        PositionManager(Mock())
        PositionManager(CcxtClient(Mock()))
        assert pm.open_position("BTC/USDT:USDT", "BUY", 10, 5, 0.03)
        for symbol, pnl, position in pm.update_positions():
            print(symbol, f"{pnl:+.2%}", position.side)
        pm.positions["ETH/USDT:USDT"] = Position("ETH/USDT:USDT", "long", 3000, 1, 10, 2900)
        pm.positions["ETH/USDT:USDT"].strategy = "breakout"
        when: datetime = clock.advance(hours=1, delta=timedelta(minutes=5))
        count: int = pm.get_open_positions_count()
        client: ExchangeClient = pm.client
        """,
    )
    assert errors == []
