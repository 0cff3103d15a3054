"""A `Position` subclass's overrides are what the manager calls, as with the original.

The original's update cycle and `close_position` called `update_trailing_stop`,
`update_take_profit`, `should_close`, `get_pnl` and `get_leveraged_pnl` on the bot's own objects,
and the base methods read the P/L through `self`, so an override changes the cycle's decisions
and the close's returned P/L. Positions whose class overrides none of them run the built-in math.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from helpers_clients import FakeExchange, make_manager
from reliability_helpers import candles

from position_manager_rs import Position, PositionManager
from position_manager_rs.testing import frozen_clock

BTC = "BTC/USDT:USDT"


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with frozen_clock(datetime(2026, 1, 1, 12, 0, 0)):
        yield


def long_position(cls: type[Position] = Position) -> Position:
    return cls(BTC, "long", 100.0, 1.0, 10, 95.0, 115.0)


def setup(cls: type[Position], price: float = 100.0, with_candles: bool = False) -> Any:
    exchange = FakeExchange()
    exchange.open(BTC, contracts=1.0)
    exchange.set_price(BTC, price)
    if with_candles:
        rows = candles(price)
        exchange.on_get_ohlcv = lambda symbol, timeframe="1h", limit=100: rows
    pm = make_manager(exchange)
    position = long_position(cls)
    pm.positions[BTC] = position
    return exchange, pm, position


class ExitsAlways(Position):
    def should_close(self, current_price: float) -> tuple[bool, str]:
        return True, "my_own_exit"


def test_an_overridden_should_close_decides_the_close() -> None:
    _exchange, pm, position = setup(ExitsAlways)
    [(symbol, _pnl, closed)] = list(pm.update_positions())
    assert symbol == BTC and closed is position
    assert [e["reason"] for e in pm.events if e["kind"] == "closed"] == ["my_own_exit"]


class Optimist(Position):
    """Reports a 25 % leveraged profit whatever the price."""

    calls: list[tuple[float, bool]]

    def get_leveraged_pnl(self, current_price: float, include_fees: object = False) -> float:
        self.calls = [*getattr(self, "calls", []), (current_price, bool(include_fees))]
        return 0.25


def test_the_base_should_close_reads_the_pnl_through_the_override() -> None:
    _exchange, pm, position = setup(Optimist)
    [(_symbol, pnl, _closed)] = list(pm.update_positions())
    # The built-in should_close saw r = 0.25 (>= 20 %): the exceptional take profit.
    assert [e["reason"] for e in pm.events if e["kind"] == "closed"] == [
        "take_profit_20pct_exceptional"
    ]
    # The close's P/L is the override's answer with fees, as the original returned it.
    assert pnl == 0.25
    assert (100.0, True) in position.calls
    # Called directly, the base method reads it the same way.
    fresh = long_position(Optimist)
    assert fresh.should_close(100.0) == (True, "take_profit_20pct_exceptional")


class Halved(Position):
    """get_pnl halved: the base get_leveraged_pnl and the trailing stop read it through self."""

    def get_pnl(self, current_price: float, include_fees: object = False) -> float:
        return Position.get_pnl(self, current_price, include_fees) / 2


def test_an_overridden_get_pnl_reaches_the_base_methods() -> None:
    p = long_position(Halved)
    assert p.get_pnl(110.0) == pytest.approx(0.05)
    assert p.get_leveraged_pnl(110.0) == pytest.approx(0.5)
    p.update_trailing_stop(110.0, 0.02)
    assert p.max_favorable_excursion == pytest.approx(0.05)  # the halved, unleveraged u


class Recording(Position):
    """Records the cycle's calls and delegates to the built-in methods."""

    log: list[str]

    def _note(self, what: str) -> None:
        self.log = [*getattr(self, "log", []), what]

    def update_trailing_stop(  # type: ignore[override]
        self, current_price: float, trailing_percentage: float, **kw: Any
    ) -> None:
        self._note(f"trailing {sorted(kw)}")
        super().update_trailing_stop(current_price, trailing_percentage, **kw)

    def update_take_profit(self, current_price: float, **kw: Any) -> None:  # type: ignore[override]
        self._note(f"take_profit {sorted(kw)}")
        super().update_take_profit(current_price, **kw)


def test_the_cycle_calls_overridden_trailing_and_take_profit_updates() -> None:
    _exchange, pm, position = setup(Recording, price=100.1, with_candles=True)
    assert list(pm.update_positions()) == []
    assert position.log == [
        "trailing ['momentum', 'volatility']",
        "take_profit ['momentum', 'rsi', 'support_resistance', 'trend_strength', 'volatility']",
    ]
    assert position.trailing_stop_activated  # the base update ran through super()


class Broken(Position):
    def should_close(self, current_price: float) -> tuple[bool, str]:
        raise ValueError("bug in my exit rule")


def test_an_override_that_raises_is_the_positions_error_and_the_cycle_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exchange, pm, _position = setup(Broken)
    eth = long_position()
    eth.symbol = "ETH/USDT:USDT"
    exchange.open("ETH/USDT:USDT", contracts=1.0)
    pm.positions["ETH/USDT:USDT"] = eth
    caplog.set_level(logging.ERROR, logger="TradingBot")
    assert list(pm.update_positions()) == []
    assert any("bug in my exit rule" in r.getMessage() for r in caplog.records)
    assert set(pm.positions) == {BTC, "ETH/USDT:USDT"}


class Plain(Position):
    """A subclass that overrides nothing: the built-in math, the same outcome."""

    note = "mine"


def test_a_subclass_without_overrides_behaves_as_position() -> None:
    _, pm_sub, sub = setup(Plain, price=100.1)
    _, pm_base, base = setup(Position, price=100.1)
    assert list(pm_sub.update_positions()) == [] and list(pm_base.update_positions()) == []
    assert (sub.stop_loss, sub.take_profit) == (base.stop_loss, base.take_profit)
    assert sub.note == "mine"


class Answers(Position):
    """Its should_close answers whatever was put in ``answer``."""

    answer: Any = None

    def should_close(self, current_price: float) -> Any:
        return self.answer


@pytest.mark.parametrize(
    "answer",
    [[True, "my_own_exit"], iter([True, "my_own_exit"]), (x for x in (True, "my_own_exit"))],
    ids=["list", "iterator", "generator"],
)
def test_should_close_may_answer_any_sequence_of_two(answer: Any) -> None:
    # Only a tuple was taken: a list was the position's error every cycle and it was never
    # closed (found by an audit). The original unpacked it: close, reason = should_close(price).
    _exchange, pm, position = setup(Answers)
    position.answer = answer
    [(symbol, _pnl, closed)] = list(pm.update_positions())
    assert symbol == BTC and closed is position
    assert [e["reason"] for e in pm.events if e["kind"] == "closed"] == ["my_own_exit"]


@pytest.mark.parametrize(
    ("answer", "what"),
    [
        ("no", "'no' (str)"),
        (b"no", "b'no' (bytes)"),
        ({True: 1, "x": 2}, "{True: 1, 'x': 2} (dict)"),
        (None, "None (NoneType)"),
        ((True,), "1 item(s), (True,) (tuple)"),
        ((True, "x", None), "more than 2 items, (True, 'x', None) (tuple)"),
        (itertools.repeat(True), "more than 2 items, repeat(True) (repeat)"),
    ],
    ids=["str", "bytes", "dict", "None", "one", "three", "endless"],
)
def test_any_other_should_close_answer_is_the_positions_error(
    caplog: pytest.LogCaptureFixture, answer: Any, what: str
) -> None:
    exchange, pm, position = setup(Answers)
    position.answer = answer
    caplog.set_level(logging.ERROR, logger="TradingBot")
    assert list(pm.update_positions()) == []
    expected = f"should_close() returned {what}, expected a tuple (close, reason)"
    assert any(expected in r.getMessage() for r in caplog.records), expected
    assert pm.positions[BTC] is position and not exchange.calls_of("close_position")


def _bools() -> list[Any]:
    numpy = pytest.importorskip("numpy")
    return [True, numpy.True_]


@pytest.mark.parametrize("which", [0, 1], ids=["bool", "numpy.bool_"])
def test_an_overridden_pnl_that_answers_a_bool_is_the_positions_error(
    caplog: pytest.LogCaptureFixture, which: int
) -> None:
    # True was taken for a P/L of 1.0 (100 %): the position was closed with that P/L (found by
    # an audit). A bool is no number anywhere else either.
    answer = _bools()[which]

    class BoolPnl(Position):
        def get_pnl(self, current_price: float, include_fees: object = False) -> Any:
            return answer

        def should_close(self, current_price: float) -> tuple[bool, str]:
            return True, "my_own_exit"

    class BoolLeveragedPnl(Position):
        def get_leveraged_pnl(self, current_price: float, include_fees: object = False) -> Any:
            return answer

    exchange, pm, position = setup(BoolPnl)
    caplog.set_level(logging.WARNING, logger="TradingBot")
    # The close its should_close asks for goes out; its figures are the built-in ones (0 at the
    # entry price), not a P/L of 100 %.
    [(symbol, pnl, closed)] = list(pm.update_positions())
    assert symbol == BTC and closed is position and pnl == pytest.approx(-0.012)
    assert any(
        "get_pnl()'s answer must be a number, not a bool" in r.getMessage()
        and "closing with the built-in P/L" in r.getMessage()
        for r in caplog.records
    )
    assert len(exchange.calls_of("close_position")) == 1
    with pytest.raises(
        TypeError, match=r"get_leveraged_pnl\(\)'s answer must be a number, not a bool"
    ):
        long_position(BoolLeveragedPnl).should_close(100.0)


class Tagged(Position):
    """The usual way a bot subclasses the original: an __init__ of its own, with arguments of
    its own, that calls super().__init__ with the position's."""

    def __init__(
        self,
        symbol: str,
        side: str,
        entry_price: float,
        amount: float,
        leverage: float,
        stop_loss: float,
        take_profit: float | None = None,
        *,
        strategy: str = "default",
    ) -> None:
        super().__init__(symbol, side, entry_price, amount, leverage, stop_loss, take_profit)
        self.strategy = strategy


class ByKeyword(Position):
    """Takes its own argument first and passes the position's on by keyword."""

    def __init__(self, strategy: str, **fields: Any) -> None:
        super().__init__(**fields)
        self.strategy = strategy


class Normalised(Position):
    """Passes super().__init__ other values than it was given."""

    def __init__(self, symbol: str, side: str, *rest: Any) -> None:
        super().__init__(symbol.upper(), side.lower(), *rest)


FIELDS: dict[str, Any] = {
    "symbol": BTC,
    "side": "long",
    "entry_price": 100.0,
    "amount": 1.0,
    "leverage": 10,
    "stop_loss": 95.0,
    "take_profit": 115.0,
}


@pytest.mark.parametrize(
    ("make", "strategy"),
    [
        (lambda: Tagged(BTC, "long", 100.0, 1.0, 10, 95.0, 115.0), "default"),
        (lambda: Tagged(BTC, "long", 100.0, 1.0, 10, 95.0, 115.0, strategy="rl"), "rl"),
        (lambda: ByKeyword("rl", **FIELDS), "rl"),
        (lambda: Normalised("btc/usdt:usdt", "LONG", 100.0, 1.0, 10, 95.0, 115.0), None),
    ],
    ids=["own-init", "own-keyword", "core-by-keyword", "other-values"],
)
def test_a_subclass_with_an_init_of_its_own_gets_what_it_passes_to_super(
    make: Any, strategy: str | None
) -> None:
    # Position.__new__ read the subclass's arguments as its own and refused them; then
    # super().__init__(...) reached object.__init__ (found by an audit).
    p = make()
    assert p.to_dict() == long_position().to_dict()
    assert getattr(p, "strategy", None) == strategy


def test_a_subclass_with_an_init_of_its_own_works_in_a_cycle() -> None:
    exchange, pm, position = setup(Tagged, price=90.0)
    assert position.strategy == "default"
    [(symbol, _pnl, closed)] = list(pm.update_positions())
    assert symbol == BTC and closed is position and exchange.calls_of("close_position")


def test_super_init_checks_its_arguments_as_the_constructor_does() -> None:
    missing = r"^Position\.__init__\(\) missing 1 required positional argument: 'stop_loss'$"
    with pytest.raises(TypeError, match=missing):
        Normalised("btc", "long", 100.0, 1.0, 10)
    with pytest.raises(ValueError, match=r"^side must be 'long' or 'short', got 'sideways'"):
        Normalised("btc", "sideways", 100.0, 1.0, 10, 95.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'stategy'"):
        ByKeyword("rl", **{**FIELDS, "stategy": "misspelt"})


class NeverInitialised(Position):
    """An __init__ of its own that forgets super().__init__(...)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config


def test_a_position_whose_init_never_called_super_is_refused_by_the_book() -> None:
    p = NeverInitialised({"symbol": BTC})
    pm = PositionManager(FakeExchange())
    with pytest.raises(TypeError, match=r"NeverInitialised's __init__ did not call super\(\)"):
        pm.positions[BTC] = p
    assert BTC not in pm.positions


class PnlRaises(Position):
    def get_pnl(self, current_price: float, include_fees: object = False) -> float:
        raise RuntimeError("my P/L service is down")


def test_a_close_goes_out_when_the_positions_pnl_override_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A subclass whose get_pnl raised could never be closed, by the cycle or by close_position
    # (found by an audit): the close's figures came first. Now the close goes out with the
    # built-in figures and a WARNING; an interruption still ends the call.
    exchange, pm, position = setup(PnlRaises)
    caplog.set_level(logging.WARNING, logger="TradingBot")
    pnl = pm.close_position(BTC, "shutdown")
    assert pnl == pytest.approx(-0.012)  # the built-in leveraged P/L with fees at the entry
    assert len(exchange.calls_of("close_position")) == 1 and not pm.has_position(BTC)
    assert any(
        "my P/L service is down" in r.getMessage()
        and "closing with the built-in P/L" in r.getMessage()
        for r in caplog.records
    )

    class PnlInterrupted(Position):
        def get_pnl(self, current_price: float, include_fees: object = False) -> float:
            raise KeyboardInterrupt

    exchange, pm, position = setup(PnlInterrupted)
    with pytest.raises(KeyboardInterrupt):
        pm.close_position(BTC, "shutdown")
    assert not exchange.calls_of("close_position") and pm.positions[BTC] is position
