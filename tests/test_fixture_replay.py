"""Replays the golden fixtures of the original implementation (tests/fixtures/README.md).

* ``formatting.json``: ``format_price`` / ``format_pnl_usd``, exact strings.
* ``position_traces.json``: ``Position`` traces under a frozen clock (every ``after`` key, floats
  bit-exact), ``move_to_breakeven`` and ``calculate_intelligent_targets`` (exact).

The fixtures are in ``tests/fixtures/`` (see ``tests/golden.py``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from golden import load

from position_manager_rs import Position, format_pnl_usd, format_price
from position_manager_rs.testing import frozen_clock

FORMATTING: dict[str, Any] = load("formatting.json")
TRACES: dict[str, Any] = load("position_traces.json")
T0 = datetime.fromisoformat(TRACES["frozen_clock"]["t0"])
# The README's replay check used a second start time: only differences between times matter.
OTHER_T0 = datetime(2031, 7, 15, 13, 37, 42)


# --------------------------------------------------------------------------- formatting


def _fmt_id(prefix: str, i: int, x: Any) -> str:
    return f"{prefix}[{i}]={x!r}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(x, e, id=_fmt_id("fp", i, x))
        for i, (x, e) in enumerate(FORMATTING["format_price"])
    ],
)
def test_format_price(value: float, expected: str) -> None:
    assert format_price(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(x, e, id=_fmt_id("fu", i, x))
        for i, (x, e) in enumerate(FORMATTING["format_pnl_usd"])
    ],
)
def test_format_pnl_usd(value: float, expected: str) -> None:
    assert format_pnl_usd(value) == expected


@pytest.mark.parametrize(("text", "expected"), FORMATTING["format_price_special"])
def test_format_price_special(text: str, expected: str) -> None:
    assert format_price(float(text)) == expected


@pytest.mark.parametrize(("text", "expected"), FORMATTING["format_pnl_usd_special"])
def test_format_pnl_usd_special(text: str, expected: str) -> None:
    assert format_pnl_usd(float(text)) == expected


def test_formatting_fixture_sizes() -> None:
    # Guards against an accidentally truncated fixture file silently shrinking the replay.
    assert len(FORMATTING["format_price"]) >= 426
    assert len(FORMATTING["format_pnl_usd"]) >= 426
    assert len(FORMATTING["format_price_special"]) == 3
    assert len(FORMATTING["format_pnl_usd_special"]) == 3


# --------------------------------------------------------------------------- position traces


def _same(actual: Any, expected: Any) -> bool:
    """Exact equality, with type discipline: floats bit-exact (rel 1e-9 is checked separately)."""
    if expected is None or isinstance(expected, (bool, str)):
        return actual == expected and type(actual) is type(expected)
    if isinstance(expected, (int, float)):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
        return float(actual) == float(expected)
    if isinstance(expected, list):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(_same(a, e) for a, e in zip(actual, expected))
        )
    return actual == expected


def _close(actual: Any, expected: Any) -> bool:
    """The README's debugging tolerance: rel 1e-9 on floats, exact for everything else."""
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(expected, list) and isinstance(actual, (list, tuple)):
        return len(actual) == len(expected) and all(_close(a, e) for a, e in zip(actual, expected))
    return _same(actual, expected)


def _replay_case(case: dict[str, Any], t0: datetime) -> list[str]:
    """Replays one trace; returns the mismatches of the first differing step (empty = success)."""
    with frozen_clock(t0) as clock:
        p = Position(
            case["symbol"],
            case["side"],
            case["entry_price"],
            case["amount"],
            case["leverage"],
            case["stop_loss"],
            case["take_profit"],
        )
        assert p.entry_time == t0
        assert p.last_pnl_time == t0
        for index, step in enumerate(case["steps"]):
            clock.set(t0 + timedelta(seconds=step["dt_seconds"]))
            price = step["price"]
            p.update_trailing_stop(
                price,
                case["trailing_percentage"],
                volatility=step["volatility"],
                momentum=step["momentum"],
            )
            mfe_after_trailing = p.max_favorable_excursion
            p.update_take_profit(
                price,
                momentum=step["momentum"],
                trend_strength=step["trend_strength"],
                volatility=step["volatility"],
                rsi=step["rsi"],
                support_resistance=step["support_resistance"],
            )
            closed = p.should_close(price)
            actual: dict[str, Any] = {
                "stop_loss": p.stop_loss,
                "take_profit": p.take_profit,
                "highest_price": p.highest_price,
                "lowest_price": p.lowest_price,
                "trailing_stop_activated": p.trailing_stop_activated,
                "max_favorable_excursion": p.max_favorable_excursion,
                "profit_velocity": p.profit_velocity,
                "profit_acceleration": p.profit_acceleration,
                "last_pnl": p.last_pnl,
                "last_pnl_time_seconds": (p.last_pnl_time - p.entry_time).total_seconds(),
                "should_close": list(closed),
                "mfe_after_trailing": mfe_after_trailing,
            }
            expected = step["after"]
            assert set(expected) <= set(actual), f"fixture has keys we do not check: {expected}"
            problems = []
            for key, want in expected.items():
                got = actual[key]
                if not _close(got, want):
                    problems.append(f"{key}: expected {want!r}, got {got!r} (beyond rel 1e-9)")
                elif not _same(got, want):
                    problems.append(f"{key}: expected {want!r}, got {got!r} (not bit-exact)")
            if not isinstance(closed, tuple):
                problems.append(f"should_close returned {type(closed).__name__}, not a tuple")
            if problems:
                head = (
                    f"case {case['name']} step {index} (dt={step['dt_seconds']}s, "
                    f"price={price!r}) differs:"
                )
                return [head, *problems]
    return []


CASES = TRACES["cases"]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in CASES])
def test_position_trace(case: dict[str, Any]) -> None:
    problems = _replay_case(case, T0)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c["name"]) for c in CASES if c["name"].startswith("edge_")],
)
def test_position_trace_other_start_time(case: dict[str, Any]) -> None:
    # Only time differences matter: the same trace replays identically from another T0.
    problems = _replay_case(case, OTHER_T0)
    assert not problems, "\n".join(problems)


def test_trace_fixture_shape() -> None:
    assert len(CASES) >= 78
    assert sum(len(c["steps"]) for c in CASES) >= 3639
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names), "case names must be unique to identify failures"


# --------------------------------------------------------------------------- move_to_breakeven


BREAKEVEN = TRACES["move_to_breakeven"]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=f"be{i}-{c['side']}-p{c['price']!r}-b{c['buffer']!r}")
        for i, c in enumerate(BREAKEVEN)
    ],
)
def test_move_to_breakeven(case: dict[str, Any]) -> None:
    p = Position(
        "BE/USDT:USDT",
        case["side"],
        case["entry_price"],
        case["amount"],
        case["leverage"],
        case["stop_loss"],
        case["take_profit"],
    )
    p.breakeven_moved = case["breakeven_moved_before"]
    result = p.move_to_breakeven(case["price"], buffer=case["buffer"])
    assert result is case["result"]
    assert p.stop_loss == case["stop_loss_after"], (p.stop_loss, case["stop_loss_after"])
    assert p.breakeven_moved is case["breakeven_moved_after"]


def test_breakeven_fixture_covers_both_outcomes() -> None:
    outcomes = {c["result"] for c in BREAKEVEN}
    assert outcomes == {True, False}
    assert len(BREAKEVEN) >= 134


# --------------------------------------------------------------------------- intelligent targets


TARGETS = TRACES["calculate_intelligent_targets"]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=f"it{i}-{c['side']}-p{c['current_price']!r}")
        for i, c in enumerate(TARGETS)
    ],
)
def test_calculate_intelligent_targets(case: dict[str, Any]) -> None:
    long_pos = case["position_side"] == "long"
    p = Position(
        "IT/USDT:USDT",
        case["position_side"],
        100.0,
        1.0,
        5,
        95.0 if long_pos else 105.0,
        110.0 if long_pos else 90.0,
    )
    before = p.to_dict()
    result = p.calculate_intelligent_targets(
        case["current_price"], case["support_resistance"], case["side"]
    )
    assert isinstance(result, tuple)
    assert len(result) == 2
    expected = case["result"]
    assert result[0] == expected[0], f"stop loss: expected {expected[0]!r}, got {result[0]!r}"
    assert result[1] == expected[1], f"take profit: expected {expected[1]!r}, got {result[1]!r}"
    # Pure: the position is not changed.
    assert p.to_dict() == before


def test_targets_fixture_shape() -> None:
    assert len(TARGETS) >= 142
    # The position's own side is always the opposite of the argument: the argument must win.
    assert all(c["position_side"] != c["side"] for c in TARGETS)
