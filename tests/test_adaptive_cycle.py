"""The adaptive update cycle end to end, through a plain Python client that serves hourly candles.

Each ``test_fix_*`` scenario pins one deviation from the original (``docs/differences.md``); its
docstring says what the original did, and the assertions fail on that behaviour. The other tests
check the original's call shapes and log lines on the adaptive path, the fallback for malformed
candles, and the exit-rule objects a user may pass in (called without any lock held, their
failures a warning and a hold).
"""

from __future__ import annotations

import logging
import statistics
from datetime import datetime
from typing import Any

import pytest

from position_manager_rs import Position, PositionManager
from position_manager_rs._core import SmartExitOptimizer
from position_manager_rs.testing import frozen_clock

MAIN, POS = "TradingBot", "TradingBot.Position"
START = datetime(2025, 3, 1, 12, 0, 0)

Candle = list[float]


def candles(closes: list[float], volumes: list[float] | None = None) -> list[Candle]:
    """Hourly candles through ``closes`` (open = previous close, high/low the wider of the two)."""
    rows = []
    for i, close in enumerate(closes):
        open_ = closes[i - 1] if i else close
        volume = 1000.0 if volumes is None else volumes[i]
        ts = 1_740_000_000_000 + 3_600_000 * i
        rows.append([ts, open_, max(open_, close), min(open_, close), close, volume])
    return rows


def uptrend(step: float = 1.005) -> list[float]:
    """100 closes, each ``step`` times the previous one (only gains: RSI 100)."""
    return [100.0 * step**i for i in range(100)]


def spike_then_sag() -> list[float]:
    """Flat, four strong gains to 120, ten small losses to 117: momentum -2.5 %, RSI about 87."""
    return (
        [100.0] * 86
        + [100.0 + 5 * i for i in range(1, 5)]
        + [120.0 - 0.3 * i for i in range(1, 11)]
    )


def choppy() -> list[float]:
    """Alternating 100/106 ending on 105.5: wide bands, momentum just below 0, RSI near 50."""
    closes = [106.0 if i % 2 else 100.0 for i in range(100)]
    closes[-1] = 105.5
    return closes


class CandleClient:
    """A plain exchange client: lists the positions it is told about, quotes one price, serves
    candles per symbol and fills every order."""

    def __init__(self, price: float, ohlcv: dict[str, list[Candle]] | None = None) -> None:
        self.price = price
        self.ohlcv = ohlcv or {}
        self.listed: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.orders: list[tuple[Any, ...]] = []

    def list_position(self, symbol: str, side: str = "long", contracts: float = 1.0) -> None:
        self.listed[symbol] = {"symbol": symbol, "side": side, "contracts": contracts}

    def get_open_positions(self) -> list[dict[str, Any]]:
        return list(self.listed.values())

    def get_ticker(self, symbol: str) -> dict[str, float]:
        return {"last": self.price}

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Candle]:
        self.calls.append(("get_ohlcv", symbol, timeframe, limit))
        return self.ohlcv.get(symbol, [])

    def close_position(self, symbol: str) -> bool:
        self.calls.append(("close_position", symbol))
        self.listed.pop(symbol, None)
        return True

    def get_market_limits(self, symbol: str) -> None:
        return None

    def create_market_order(
        self, symbol: str, side: str, amount: float, leverage: float, **kwargs: Any
    ) -> dict[str, Any]:
        self.orders.append((symbol, side, amount, leverage, kwargs))
        listed = self.listed.get(symbol)
        if listed is not None and kwargs.get("reduce_only"):
            listed["contracts"] -= amount
        return {"id": f"o{len(self.orders)}", "status": "closed", "filled": amount}


def manager_with(client: CandleClient, *positions: Position, **options: Any) -> PositionManager:
    pm = PositionManager(client, 0.02, ticker_retry_delays=(), **options)
    for p in positions:
        client.list_position(p.symbol, p.side, p.amount)
        pm.positions[p.symbol] = p
    return pm


def messages(caplog: pytest.LogCaptureFixture, name: str, level: int | None = None) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == name and (level is None or r.levelno == level)
    ]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=MAIN)
    caplog.set_level(logging.DEBUG, logger=POS)
    return caplog


@pytest.fixture
def clock() -> Any:
    with frozen_clock(START) as frozen:
        yield frozen


# --------------------------------------------------------------------------- the adaptive path


def test_candles_drive_the_stop_with_the_original_calls_and_lines(
    debug_logs: pytest.LogCaptureFixture, clock: Any
) -> None:
    """With >= 50 candles the stop trails with the indicators' volatility and momentum, and the
    original's DEBUG/INFO lines appear in its order."""
    client = CandleClient(101.0, {"BTC": candles(uptrend())})
    p = Position("BTC", "long", 100.0, 1.0, 1, 95.0, 104.0)
    pm = manager_with(client, p)
    assert list(pm.update_positions()) == []

    assert ("get_ohlcv", "BTC", "1h", 100) in client.calls
    simple = Position("BTC", "long", 100.0, 1.0, 1, 95.0, 104.0)
    simple.update_trailing_stop(101.0, 0.02)
    assert p.stop_loss != simple.stop_loss, "the indicators changed the trailing distance"
    assert p.take_profit is not None and p.take_profit > 104.0

    lines = messages(debug_logs, POS)
    start = lines.index("  Market Indicators:")
    block = lines[start : start + 7]
    assert block[1].startswith("    Volatility (BB Width): ")
    assert block[2].startswith("    Momentum: +0.0")
    assert block[3] == "    RSI: 100.00"
    assert block[4].startswith("    Trend Strength: ")
    assert block[5] == f"  🔄 Trailing stop updated: 95.00 -> {p.stop_loss:.2f}"
    assert block[6] == f"  🎯 Take profit adjusted: 104.00 -> {p.take_profit:.2f}"
    assert lines[-2] == "  ✓ Position still open and healthy"
    assert not any("Using simple trailing stop" in line for line in lines)


@pytest.mark.parametrize(
    "breakage",
    ["short row", "string", "nan", "zero price", "negative price", "high below low"],
)
def test_malformed_candles_warn_and_take_the_simple_path(
    debug_logs: pytest.LogCaptureFixture, breakage: str
) -> None:
    rows: list[Any] = candles(uptrend())
    bad = list(rows[60])
    if breakage == "short row":
        bad = bad[:5]
    elif breakage == "string":
        bad[4] = "101.5"
    elif breakage == "nan":
        bad[2] = float("nan")
    elif breakage == "zero price":
        bad[1] = 0.0
    elif breakage == "negative price":
        bad[3] = -1.0
    else:
        bad[2] = bad[3] / 2
    rows[60] = bad
    client = CandleClient(101.0, {"BTC": rows})
    p = Position("BTC", "long", 100.0, 1.0, 1, 95.0, None)
    pm = manager_with(client, p)
    assert list(pm.update_positions()) == []

    simple = Position("BTC", "long", 100.0, 1.0, 1, 95.0, None)
    simple.update_trailing_stop(101.0, 0.02)
    assert p.stop_loss == simple.stop_loss
    warnings = messages(debug_logs, MAIN, logging.WARNING)
    assert any(w.startswith("Malformed OHLCV data for BTC, ignoring it: ") for w in warnings)
    assert "  Using simple trailing stop (indicators failed)" in messages(debug_logs, POS)
    assert "BTC" in pm.positions


def test_fewer_than_50_candles_is_no_market_data(debug_logs: pytest.LogCaptureFixture) -> None:
    client = CandleClient(101.0, {"BTC": candles(uptrend())[:49]})
    pm = manager_with(client, Position("BTC", "long", 100.0, 1.0, 1, 95.0, None))
    assert list(pm.update_positions()) == []
    assert "  Using simple trailing stop (no market data)" in messages(debug_logs, POS)
    assert not messages(debug_logs, MAIN, logging.WARNING)


# --------------------------------------------------------------------------- the fixes


def test_fix_6_6_breakeven_never_loosens_a_tighter_stop(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    """Original: once u >= 1.5 % the breakeven+ rule set the stop to entry x 1.005 every cycle,
    here 100.50, undoing the trailing stop at 101.35."""
    client = CandleClient(103.0)
    p = Position("BTC", "long", 100.0, 1.0, 10, 90.0, None)
    pm = manager_with(client, p)
    assert list(pm.update_positions()) == []
    assert p.stop_loss == pytest.approx(103.0 * (1 - 0.016), rel=1e-15)
    assert p.stop_loss > 100.5
    assert not any("Stop loss adjusted" in m for m in messages(debug_logs, POS))

    # A breakeven stop that is tighter still applies, with the original's lines.
    short = Position("ETH", "short", 100.0, 1.0, 10, 110.0, None)
    short.lowest_price = 90.0  # no new low: the trailing stop stays at 110
    pm = manager_with(CandleClient(98.0), short)
    debug_logs.clear()
    assert list(pm.update_positions()) == []
    assert short.stop_loss == 100.0 * 0.995
    assert "🔒 Updated ETH stop loss: 110.00 -> 99.50 (Breakeven+ stop update)" in messages(
        debug_logs, MAIN
    )
    assert "  🔒 Stop loss adjusted: 110.00 -> 99.50 (Breakeven+ stop update)" in messages(
        debug_logs, POS
    )


def test_fix_6_7_a_stop_price_below_one_is_never_sold_as_a_fraction() -> None:
    """Original: the breakeven+ stop 0.5025 of a coin priced 0.51 was read as "sell 50.25 %"
    and a reduce-only market order went out every cycle."""
    client = CandleClient(0.51)
    p = Position("DOGE/USDT:USDT", "long", 0.5, 1000.0, 10, 0.45, None)
    pm = manager_with(client, p)
    assert list(pm.update_positions()) == []
    assert client.orders == []
    assert p.amount == 1000.0
    assert p.stop_loss == 0.5 * 1.005


def test_fix_6_8_and_6_9_each_target_once_and_partial_exits_are_events(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    """Original: for ROI >= 2 % (u < 1.5 %) it sold 25 % of the remainder every cycle (about once
    a second) and reported none of it. Now the first target is sold once, the second when ROI
    reaches 4 %, each partial close is an event, and the cycle yields nothing."""
    client = CandleClient(100.3)
    p = Position("BTC", "long", 100.0, 4.0, 10, 90.0, None)
    pm = manager_with(client, p)

    assert list(pm.update_positions()) == []
    assert [o[:3] for o in client.orders] == [("BTC", "sell", 1.0)]
    assert client.orders[0][4] == {"reduce_only": True, "is_critical": True}
    assert p.amount == 3.0
    assert p.partial_exits_taken == 0b001
    assert "  📊 Partial exit signal: First target reached (3.00%) (25%)" in messages(
        debug_logs, POS
    )
    assert any(
        m.startswith("Partial exit: BTC, closed 25%, P/L: ") for m in messages(debug_logs, MAIN)
    )
    partials = [e for e in pm.events if e["kind"] == "partial_close"]
    assert [e["reason"] for e in partials] == ["First target reached (3.00%)"]
    assert partials[0]["position"]["amount"] == 3.0

    for _ in range(3):
        assert list(pm.update_positions()) == []
    assert len(client.orders) == 1, "the first target is taken once"

    client.price = 100.45
    assert list(pm.update_positions()) == []
    assert [o[:3] for o in client.orders][1] == ("BTC", "sell", 0.75)
    assert p.partial_exits_taken == 0b011
    assert len([e for e in pm.events if e["kind"] == "partial_close"]) == 2
    assert "BTC" in pm.positions


def test_fix_6_10_indicators_do_not_leak_to_the_next_position() -> None:
    """Original: AAA's momentum (-2.5 %) and RSI (87) stayed in the generator frame, so BBB,
    which has no candles, was closed for AAA's momentum reversal too."""
    client = CandleClient(117.0, {"AAA": candles(spike_then_sag())})
    a = Position("AAA", "long", 117.0, 1.0, 1, 100.0, None)
    b = Position("BBB", "long", 117.0, 1.0, 1, 100.0, None)
    pm = manager_with(client, a, b)
    closed = list(pm.update_positions())
    assert [(s, pos) for s, _, pos in closed] == [("AAA", a)]
    reason = [e["reason"] for e in pm.events if e["kind"] == "closed"]
    assert reason == ["Momentum reversal (RSI: 87.0, momentum: -0.025)"]
    assert pm.positions["BBB"] is b


class Recorder:
    """A smart exit optimizer that records its calls and never exits."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def should_exit_early(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((args, kwargs))
        return {
            "should_exit": False,
            "confidence": 0.0,
            "score": 0.0,
            "reasons": [],
            "reason_text": "no clear exit signal",
        }


def test_fix_6_11_the_real_volume_ratio(debug_logs: pytest.LogCaptureFixture) -> None:
    """Original: ``volume_ratio`` was always 1.0, so ``low_volume`` never scored. With a thin
    last candle (ratio about 0.1) a long at +8 % scores 85 and is closed; with 1.0 it scored 70
    (confidence 0.70, not above 0.7) and stayed open."""
    volumes = [1000.0] * 99 + [100.0]
    rows = candles(choppy(), volumes)
    entry = 105.5 / 1.08
    client = CandleClient(105.5, {"BTC": rows})
    p = Position("BTC", "long", entry, 1.0, 1, 90.0, None)
    pm = manager_with(client, p)
    closed = list(pm.update_positions())
    assert [s for s, _, _ in closed] == ["BTC"]
    text = (
        "Smart exit: protect_large_profit, exceptional_profit, volatility_spike, low_volume "
        "(confidence: 0.85)"
    )
    assert f"  🧠 {text}" in messages(debug_logs, POS)
    assert [e["reason"] for e in pm.events if e["kind"] == "closed"] == [text]

    # What the optimizer is given: the ratio of the last volume to the 20-candle mean.
    recorder = Recorder()
    client = CandleClient(105.5, {"BTC": rows})
    pm = manager_with(
        client, Position("BTC", "long", entry, 1.0, 1, 90.0, None), smart_exit_optimizer=recorder
    )
    assert list(pm.update_positions()) == []
    ((args, kwargs),) = recorder.calls
    assert args == ()
    assert kwargs["volume_ratio"] == pytest.approx(100.0 / statistics.fmean(volumes[-20:]))


def test_fix_6_13_the_smart_exit_mirrors_its_conditions_for_shorts() -> None:
    """Original: a short at +7.9 % in a falling market (momentum -2.5 %, RSI 87) scored
    momentum_reversal + protect_large_profit + exceptional_profit + extreme_overbought = 110
    and was closed for a reversal that is in its favour. Mirrored, it scores 30 and stays."""
    original = SmartExitOptimizer().should_exit_early(
        10 / 127, 60.0, -0.025, 87.0, 0.05, 1.0, False
    )
    assert original["should_exit"] and original["confidence"] > 0.7

    client = CandleClient(117.0, {"ETH": candles(spike_then_sag())})
    s = Position("ETH", "short", 127.0, 1.0, 1, 140.0, None)
    pm = manager_with(client, s)
    assert list(pm.update_positions()) == []
    assert pm.positions["ETH"] is s
    assert ("close_position", "ETH") not in client.calls


def test_fix_6_16_rsi_of_a_window_without_losses_is_100(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    """Original: 14 changes with gains and no losses gave RSI 50 (0/0 filled with 50)."""
    recorder = Recorder()
    client = CandleClient(101.0, {"BTC": candles(uptrend())})
    pm = manager_with(
        client, Position("BTC", "long", 100.0, 1.0, 1, 95.0, None), smart_exit_optimizer=recorder
    )
    assert list(pm.update_positions()) == []
    assert recorder.calls[0][1]["current_rsi"] == 100.0
    assert "    RSI: 100.00" in messages(debug_logs, POS)
