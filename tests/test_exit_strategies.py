"""``AdvancedExitStrategy`` and ``SmartExitOptimizer``: the original's objects backed by the Rust
rules (replayed against ``exit_signals.json``), the manager's ``advanced_exit_strategy`` /
``smart_exit_optimizer`` attributes, and the user's own objects in their place: called with the
original's call shapes, with no lock held (they may call back into the manager), their
exceptions and unusable answers a warning and a hold that never loses a position.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from golden import load
from test_adaptive_cycle import CandleClient, candles, choppy, manager_with

from position_manager_rs import Position, PositionManager
from position_manager_rs._core import AdvancedExitStrategy, SmartExitOptimizer
from position_manager_rs.testing import frozen_clock

# A client these tests never call: the manager only keeps its book here.
NO_CLIENT: Any = object()

MAIN, POS = "TradingBot", "TradingBot.Position"
SIGNALS: dict[str, Any] = load("exit_signals.json")
NOW = datetime(2030, 6, 1, 8, 30, 0)


# --------------------------------------------------------------------------- the built-in objects


def test_advanced_replays_the_fixture_exactly() -> None:
    strategy = AdvancedExitStrategy()
    with frozen_clock(NOW):
        for i, case in enumerate(SIGNALS["advanced"]):
            position_data = dict(case["position_data"])
            age = position_data.pop("entry_age_seconds")
            position_data["entry_time"] = NOW - timedelta(seconds=age)
            got = strategy.get_comprehensive_exit_signal(position_data, case["market_data"])
            assert list(got) == case["result"], i
            assert type(got) is tuple


def test_smart_replays_the_fixture_exactly() -> None:
    optimizer = SmartExitOptimizer()
    for i, case in enumerate(SIGNALS["smart"]):
        assert optimizer.should_exit_early(**case["kwargs"]) == case["result"], i


def test_originals_strategy_tests() -> None:
    """The bot's own checks of its AdvancedExitStrategy (test_advanced_strategy_integration.py,
    test_trading_strategies.py), on our class."""
    s = AdvancedExitStrategy()
    now = datetime.now()
    base = {"side": "long", "entry_price": 100.0, "leverage": 10, "entry_time": now}
    # Breakeven+: u = 2 % moves the stop above entry.
    exit_, reason, stop = s.get_comprehensive_exit_signal(
        {**base, "current_price": 102.0, "current_pnl_pct": 0.2, "peak_pnl_pct": 0.2},
        {"momentum": 0.0, "rsi": 50.0},
    )
    assert (exit_, reason) == (False, "Breakeven+ stop update")
    assert stop is not None and stop > 100.0
    # Not at u = 1 %.
    assert s.get_comprehensive_exit_signal(
        {**base, "current_price": 101.0, "current_pnl_pct": 0.01, "peak_pnl_pct": 0.01}, {}
    ) == (False, "", None)
    # Momentum reversal exits.
    exit_, reason, _ = s.get_comprehensive_exit_signal(
        {**base, "current_price": 100.0, "current_pnl_pct": 0.0, "peak_pnl_pct": 0.0},
        {"momentum": -0.03, "rsi": 75.0},
    )
    assert exit_ and "reversal" in reason.lower()
    # Profit lock exits after giving back more than 30 % of a > 3 % peak.
    exit_, reason, _ = s.get_comprehensive_exit_signal(
        {**base, "current_price": 101.0, "current_pnl_pct": 0.1, "peak_pnl_pct": 0.5}, {}
    )
    assert exit_ and reason.startswith("Profit lock triggered")
    # Time: 25 h.
    exit_, reason, _ = s.get_comprehensive_exit_signal(
        {
            **base,
            "entry_time": now - timedelta(hours=25),
            "current_price": 100.0,
            "current_pnl_pct": 0.0,
        },
        {},
    )
    assert exit_ and "hold" in reason.lower()
    # Volatility spike is dormant without entry/current volatility, fires with both.
    quiet = {**base, "current_price": 100.0, "current_pnl_pct": 0.0}
    assert s.get_comprehensive_exit_signal(quiet, {"volatility": 0.2}) == (False, "", None)
    assert s.get_comprehensive_exit_signal(
        {**quiet, "entry_volatility": 0.02}, {"current_volatility": 0.05}
    ) == (True, "Volatility spike detected (+150.0%)", 1.0)
    # The once-per-target bitmask (extension): the first target taken, the second is next.
    scaled = {**base, "current_price": 100.5, "current_pnl_pct": 0.05, "peak_pnl_pct": 0.05}
    assert s.get_comprehensive_exit_signal(scaled, {})[1] == "First target reached (5.00%)"
    assert s.get_comprehensive_exit_signal({**scaled, "partial_exits_taken": 1}, {})[1] == (
        "Second target reached (5.00%)"
    )


def test_advanced_errors_are_the_originals() -> None:
    s = AdvancedExitStrategy()
    with pytest.raises(KeyError):
        s.get_comprehensive_exit_signal({"side": "long"}, {})
    with pytest.raises(ZeroDivisionError):
        s.get_comprehensive_exit_signal(
            {
                "side": "long",
                "entry_price": 1.0,
                "current_price": 1.0,
                "current_pnl_pct": 0.1,
                "leverage": 0,
            },
            {},
        )


def test_smart_unusable_arguments_answer_the_error_shape(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger=MAIN)
    got = SmartExitOptimizer().should_exit_early(None, 1, 0, 50, 0.03, 1.0, False)  # type: ignore[arg-type]
    assert got == {
        "should_exit": False,
        "confidence": 0.0,
        "score": 0.0,
        "reasons": [],
        "reason_text": "error",
    }
    assert any(m.startswith("Error in exit optimization: ") for m in caplog.messages)


def test_smart_side_extension_mirrors_shorts() -> None:
    o = SmartExitOptimizer()
    args = (0.08, 120.0, -0.03, 82.0, 0.03, 1.0, False)
    assert o.should_exit_early(*args)["score"] == 110.0
    assert o.should_exit_early(*args, side="long")["score"] == 110.0
    mirrored = o.should_exit_early(*args, side="short")
    assert (mirrored["score"], mirrored["reasons"]) == (30.0, ["exceptional_profit"])


# --------------------------------------------------------------------------- manager attributes


def test_position_manager_has_advanced_exit_strategy() -> None:
    """Port of the original suite's check: the manager carries an AdvancedExitStrategy."""
    pm = PositionManager(NO_CLIENT)
    assert isinstance(pm.advanced_exit_strategy, AdvancedExitStrategy)
    assert isinstance(pm.smart_exit_optimizer, SmartExitOptimizer)
    assert pm.advanced_exit_strategy is pm.advanced_exit_strategy


def test_assigning_objects_and_none() -> None:
    pm = PositionManager(NO_CLIENT)
    mine = Recorder()
    pm.smart_exit_optimizer = mine
    assert pm.smart_exit_optimizer is mine
    pm.smart_exit_optimizer = None
    assert type(pm.smart_exit_optimizer) is SmartExitOptimizer
    with pytest.raises(
        TypeError,
        match="advanced_exit_strategy must have a get_comprehensive_exit_signal\\(\\) method",
    ):
        pm.advanced_exit_strategy = object()
    with pytest.raises(TypeError, match="smart_exit_optimizer must have a should_exit_early"):
        PositionManager(NO_CLIENT, smart_exit_optimizer=42)


# --------------------------------------------------------------------------- the user's objects


HOLD = {
    "should_exit": False,
    "confidence": 0.0,
    "score": 0.0,
    "reasons": [],
    "reason_text": "no clear exit signal",
}


class Recorder:
    """Records every call; answers what it was told to."""

    def __init__(self, advanced: Any = (False, "", None), smart: Any = HOLD) -> None:
        self.advanced_answer = advanced
        self.smart_answer = smart
        self.advanced_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.smart_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def get_comprehensive_exit_signal(self, *args: Any, **kwargs: Any) -> Any:
        self.advanced_calls.append((args, kwargs))
        if isinstance(self.advanced_answer, BaseException):
            raise self.advanced_answer
        return self.advanced_answer

    def should_exit_early(self, *args: Any, **kwargs: Any) -> Any:
        self.smart_calls.append((args, kwargs))
        if isinstance(self.smart_answer, BaseException):
            raise self.smart_answer
        return self.smart_answer


def test_user_objects_get_the_original_call_shapes() -> None:
    mine = Recorder()
    client = CandleClient(100.3, {"BTC": candles(choppy())})
    p = Position("BTC", "long", 100.0, 4.0, 10, 90.0, 130.0)
    pm = manager_with(client, p, advanced_exit_strategy=mine, smart_exit_optimizer=mine)
    assert list(pm.update_positions()) == []

    ((args, kwargs),) = mine.advanced_calls
    assert kwargs == {}
    position_data, market_data = args
    assert set(position_data) == {
        "side",
        "entry_price",
        "current_price",
        "current_pnl_pct",
        "peak_pnl_pct",
        "leverage",
        "entry_time",
        "stop_loss",
        "take_profit",
        "partial_exits_taken",
    }
    assert position_data["side"] == "long"
    assert position_data["current_price"] == 100.3
    assert position_data["current_pnl_pct"] == p.get_leveraged_pnl(100.3)
    assert position_data["leverage"] == 10 and type(position_data["leverage"]) is int
    assert position_data["entry_time"] == p.entry_time
    assert position_data["partial_exits_taken"] == 0
    assert set(market_data) == {"volatility", "momentum", "rsi", "trend_strength"}
    assert market_data["momentum"] == pytest.approx(105.5 / 106 - 1)

    ((args, kwargs),) = mine.smart_calls
    assert args == ()
    assert set(kwargs) == {
        "position_pnl",
        "position_duration_minutes",
        "current_momentum",
        "current_rsi",
        "volatility",
        "volume_ratio",
        "trend_weakening",
    }
    assert kwargs["current_momentum"] == market_data["momentum"]
    assert kwargs["trend_weakening"] is False


@pytest.mark.parametrize(
    "answer",
    [
        RuntimeError("strategy crashed"),
        None,
        "exit",
        (True, "too short"),
        (False, "x", "0.5"),
        (False, "x", True),
        (False, "x", float("nan")),
        (False, "x", -2.0),
    ],
    ids=["raises", "none", "str", "two-tuple", "str-action", "bool-action", "nan", "negative"],
)
def test_a_failing_or_unusable_strategy_warns_and_holds(
    caplog: pytest.LogCaptureFixture, answer: Any
) -> None:
    caplog.set_level(logging.WARNING, logger=MAIN)
    client = CandleClient(100.3)
    p = Position("BTC", "long", 100.0, 4.0, 10, 90.0, None)
    pm = manager_with(client, p, advanced_exit_strategy=Recorder(advanced=answer))
    assert list(pm.update_positions()) == []
    assert pm.positions["BTC"] is p
    assert client.orders == []
    warnings = [m for m in caplog.messages if m.startswith("Advanced exit strategy failed for BTC")]
    assert len(warnings) == 1, caplog.messages
    # The smart exit and should_close still ran: a hit stop still closes the position.
    client.price = 89.0
    assert [s for s, _, _ in pm.update_positions()] == ["BTC"]


@pytest.mark.parametrize(
    "answer",
    [
        KeyError("should_exit"),
        None,
        {"should_exit": True},
        {"should_exit": True, "confidence": "high", "score": 80, "reason_text": "x"},
    ],
    ids=["raises", "none", "missing-keys", "str-confidence"],
)
def test_a_failing_or_unusable_optimizer_warns_and_holds(
    caplog: pytest.LogCaptureFixture, answer: Any
) -> None:
    caplog.set_level(logging.WARNING, logger=MAIN)
    client = CandleClient(100.1)
    p = Position("BTC", "long", 100.0, 1.0, 1, 90.0, None)
    pm = manager_with(client, p, smart_exit_optimizer=Recorder(smart=answer))
    assert list(pm.update_positions()) == []
    assert pm.positions["BTC"] is p
    assert any(m.startswith("Smart exit optimizer error for BTC: ") for m in caplog.messages)


def test_user_decisions_are_read_as_the_original_meant_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=POS)
    client = CandleClient(100.3)
    p = Position("BTC", "long", 100.0, 4.0, 10, 90.0, None)
    mine = Recorder(advanced=(False, "Breakeven+ stop update", 99.9))
    pm = manager_with(client, p, advanced_exit_strategy=mine, smart_exit_optimizer=mine)
    assert list(pm.update_positions()) == []
    assert p.stop_loss == 99.9 and client.orders == []

    mine.advanced_answer = (False, "Third target reached (3.00%)", 0.5)
    assert list(pm.update_positions()) == []
    assert [o[:3] for o in client.orders] == [("BTC", "sell", 2.0)]
    assert p.partial_exits_taken == 0b100
    assert list(pm.update_positions()) == []
    assert len(client.orders) == 1, "a named target is taken once"

    mine.smart_answer = {
        "should_exit": True,
        "confidence": 0.9,
        "score": 90,
        "reasons": [],
        "reason_text": "mine",
    }
    mine.advanced_answer = (False, "", None)
    closed = list(pm.update_positions())
    assert [s for s, _, _ in closed] == ["BTC"]
    assert "  🧠 Smart exit: mine (confidence: 0.90)" in caplog.messages


class Subclassed(AdvancedExitStrategy):
    def __init__(self) -> None:
        self.calls = 0

    def get_comprehensive_exit_signal(
        self, position_data: Any, market_data: Any
    ) -> tuple[bool, str, float | None]:
        self.calls += 1
        return super().get_comprehensive_exit_signal(position_data, market_data)


def test_a_subclass_is_called_through_python_and_honours_taken_targets() -> None:
    mine = Subclassed()
    client = CandleClient(100.3)
    p = Position("BTC", "long", 100.0, 4.0, 10, 90.0, None)
    pm = manager_with(client, p, advanced_exit_strategy=mine)
    for _ in range(3):
        assert list(pm.update_positions()) == []
    assert mine.calls == 3
    assert [o[:3] for o in client.orders] == [("BTC", "sell", 1.0)]
    client.price = 100.45
    assert list(pm.update_positions()) == []
    assert [o[:3] for o in client.orders][1] == ("BTC", "sell", 0.75)


class Reentrant(Recorder):
    """Calls back into the manager from inside the strategy (would deadlock under a lock)."""

    def __init__(self) -> None:
        super().__init__()
        self.manager: PositionManager | None = None
        self.seen: list[Any] = []

    def get_comprehensive_exit_signal(self, *args: Any, **kwargs: Any) -> Any:
        assert self.manager is not None
        pos = self.manager.positions["BTC"]
        pos.stop_loss = 91.0
        self.seen.append((self.manager.get_open_positions_count(), pos.stop_loss, pos.amount))
        return (False, "", None)


@pytest.mark.timeout(60)
def test_user_objects_run_without_locks_and_alongside_other_threads() -> None:
    mine = Reentrant()
    client = CandleClient(100.1, {"BTC": candles(choppy())})
    p = Position("BTC", "long", 100.0, 4.0, 10, 90.0, None)
    pm = manager_with(client, p, advanced_exit_strategy=mine, smart_exit_optimizer=mine)
    mine.manager = pm
    stop = threading.Event()
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            while not stop.is_set():
                pm.get_open_positions_count()
                pm.positions.get("BTC")
                _ = p.stop_loss
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def cycles() -> None:
        try:
            for _ in range(50):
                list(pm.update_positions())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    others = [threading.Thread(target=hammer) for _ in range(2)]
    worker = threading.Thread(target=cycles)
    for t in others:
        t.start()
    worker.start()
    worker.join(timeout=45)
    stop.set()
    for t in others:
        t.join(timeout=10)
    assert not worker.is_alive(), "the update cycle deadlocked"
    assert not errors, errors
    assert len(mine.seen) == 50
    assert mine.seen[0] == (1, 91.0, 4.0)
    assert len(mine.smart_calls) == 50
