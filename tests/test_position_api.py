"""The Python surface of ``Position`` (spec/original-behavior.md §1.4 and §7).

Constructor keyword names, every attribute readable and writable with the original's initial
values, argument type errors that name the argument, ``repr``, and docstrings.
"""

from __future__ import annotations

import inspect
import math
import os
import pydoc
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from position_manager_rs import Position
from position_manager_rs.testing import frozen_clock

T0 = datetime(2025, 1, 1, 12, 0, 0)
REQUIRED = inspect.Parameter.empty


def long_position(**overrides: Any) -> Position:
    kwargs: dict[str, Any] = dict(
        symbol="BTC/USDT:USDT",
        side="long",
        entry_price=50000.0,
        amount=0.1,
        leverage=10,
        stop_loss=49000.0,
        take_profit=52000.0,
    )
    kwargs.update(overrides)
    return Position(**kwargs)


# --------------------------------------------------------------------------- constructor


def test_constructor_keyword_names() -> None:
    p = Position(
        symbol="ETH/USDT:USDT",
        side="short",
        entry_price=3000.0,
        amount=2.0,
        leverage=5,
        stop_loss=3150.0,
        take_profit=2550.0,
    )
    assert (p.symbol, p.side, p.entry_price, p.amount, p.leverage) == (
        "ETH/USDT:USDT",
        "short",
        3000.0,
        2.0,
        5,
    )
    assert (p.stop_loss, p.take_profit) == (3150.0, 2550.0)


def test_constructor_signature_matches_the_original() -> None:
    sig = inspect.signature(Position)
    assert list(sig.parameters) == [
        "symbol",
        "side",
        "entry_price",
        "amount",
        "leverage",
        "stop_loss",
        "take_profit",
    ]
    assert sig.parameters["take_profit"].default is None
    for name in ["symbol", "side", "entry_price", "amount", "leverage", "stop_loss"]:
        assert sig.parameters[name].default is inspect.Parameter.empty


def test_positional_construction_and_default_take_profit() -> None:
    p = Position("SOL/USDT:USDT", "long", 150.0, 3.0, 2, 140.0)
    assert p.take_profit is None
    assert p.initial_take_profit is None


def test_missing_argument_raises_typeerror() -> None:
    with pytest.raises(TypeError, match="stop_loss"):
        Position("X", "long", 1.0, 1.0, 1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("get_pnl", [("current_price", REQUIRED), ("include_fees", False)]),
        ("get_leveraged_pnl", [("current_price", REQUIRED), ("include_fees", False)]),
        ("should_close", [("current_price", REQUIRED)]),
        (
            "update_trailing_stop",
            [
                ("current_price", REQUIRED),
                ("trailing_percentage", REQUIRED),
                ("volatility", 0.03),
                ("momentum", 0.0),
            ],
        ),
        (
            "update_take_profit",
            [
                ("current_price", REQUIRED),
                ("momentum", 0.0),
                ("trend_strength", 0.5),
                ("volatility", 0.03),
                ("rsi", 50.0),
                ("support_resistance", None),
            ],
        ),
        ("move_to_breakeven", [("current_price", REQUIRED), ("buffer", 0.001)]),
        (
            "calculate_intelligent_targets",
            [("current_price", REQUIRED), ("support_resistance", REQUIRED), ("side", REQUIRED)],
        ),
    ],
)
def test_method_signatures_match_the_original(method: str, params: list[tuple[str, Any]]) -> None:
    sig = inspect.signature(getattr(Position, method))
    names = [n for n in sig.parameters if n != "self"]
    assert names == [n for n, _ in params]
    for name, default in params:
        assert sig.parameters[name].default == default, name


def test_adjust_take_profit_with_volume_profile_exists() -> None:
    sig = inspect.signature(Position.adjust_take_profit_with_volume_profile)
    assert [n for n in sig.parameters if n != "self"] == ["current_price", "df"]


# --------------------------------------------------------------------------- initial values


def test_initial_values_long() -> None:
    before = datetime.now()
    p = long_position()
    after = datetime.now()
    assert p.symbol == "BTC/USDT:USDT"
    assert p.side == "long"
    assert p.entry_price == 50000.0
    assert p.amount == 0.1
    assert p.leverage == 10
    assert p.stop_loss == 49000.0
    assert p.take_profit == 52000.0
    assert p.highest_price == 50000.0
    assert p.lowest_price is None
    assert p.trailing_stop_activated is False
    assert p.max_favorable_excursion == 0.0
    assert p.initial_stop_loss == 49000.0
    assert p.initial_take_profit == 52000.0
    assert p.last_pnl == 0.0
    assert p.profit_velocity == 0.0
    assert p.breakeven_moved is False
    assert p.profit_acceleration == 0.0
    assert p.partial_exits_taken == 0
    for t in (p.entry_time, p.last_pnl_time):
        assert isinstance(t, datetime)
        assert t.tzinfo is None
        assert before - timedelta(seconds=1) <= t <= after + timedelta(seconds=1)
    assert abs((p.last_pnl_time - p.entry_time).total_seconds()) < 1.0


def test_initial_values_short() -> None:
    p = Position("ETH/USDT:USDT", "short", 3000.0, 1.0, 3, 3100.0, 2700.0)
    assert p.highest_price is None
    assert p.lowest_price == 3000.0


@pytest.mark.parametrize("side", ["flat", "LONG", "Short", "buy", "", " long"])
def test_a_side_other_than_long_or_short_is_refused(side: str) -> None:
    # The original treated any such side as a short ('LONG' had its P/L inverted).
    with pytest.raises(ValueError, match=f"side must be 'long' or 'short', got {side!r}"):
        Position("X", side, 10.0, 1.0, 1, 9.0, 11.0)
    p = Position("X", "long", 10.0, 1.0, 1, 9.0, 11.0)
    with pytest.raises(ValueError, match="side must be 'long' or 'short'"):
        p.side = side
    assert p.side == "long" and p.get_pnl(11.0) > 0
    with pytest.raises(ValueError, match="side must be 'long' or 'short'"):
        p.calculate_intelligent_targets(10.0, None, side)


def test_frozen_clock_gives_exact_times() -> None:
    with frozen_clock(T0):
        p = long_position()
    assert p.entry_time == T0
    assert p.last_pnl_time == T0


def test_types_of_initial_values() -> None:
    p = long_position()
    assert type(p.trailing_stop_activated) is bool
    assert type(p.breakeven_moved) is bool
    assert isinstance(p.partial_exits_taken, int)
    for name in [
        "entry_price",
        "amount",
        "stop_loss",
        "take_profit",
        "max_favorable_excursion",
        "last_pnl",
        "profit_velocity",
        "profit_acceleration",
    ]:
        assert isinstance(getattr(p, name), float), name


def test_leverage_int_stays_int_like() -> None:
    p = long_position(leverage=10)
    assert isinstance(p.leverage, int) and not isinstance(p.leverage, bool)
    assert f"{p.leverage}x" == "10x"
    assert p.leverage / 4 == 2.5
    assert p.leverage > 0


def test_fractional_leverage_is_kept() -> None:
    p = long_position(leverage=2.5)
    assert p.leverage == 2.5
    assert p.get_leveraged_pnl(51000.0) == pytest.approx(0.02 * 2.5)


def test_entry_time_is_naive_local_time() -> None:
    # The original uses datetime.now(): naive *local* time. Check in a timezone far from UTC.
    if not os.path.exists("/usr/share/zoneinfo/Asia/Kolkata"):
        pytest.skip("tz database not available")
    code = (
        "from datetime import datetime\n"
        "from position_manager_rs import Position\n"
        "p = Position('X', 'long', 1.0, 1.0, 1, 0.9)\n"
        "print((datetime.now() - p.entry_time).total_seconds(), p.entry_time.tzinfo)\n"
    )
    env = dict(os.environ, TZ="Asia/Kolkata")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    delta, tz = out.stdout.split()
    assert abs(float(delta)) < 60.0, f"entry_time is {delta} s away from local now()"
    assert tz == "None"


# --------------------------------------------------------------------------- writable attributes


WRITES: list[tuple[str, Any]] = [
    ("symbol", "ETH/USDT:USDT"),
    ("side", "short"),
    ("entry_price", 123.25),
    ("amount", 7.5),
    ("leverage", 20),
    ("stop_loss", 120.0),
    ("take_profit", 130.0),
    ("take_profit", None),
    ("highest_price", 140.0),
    ("highest_price", None),
    ("lowest_price", 110.0),
    ("lowest_price", None),
    ("entry_time", datetime(2024, 5, 6, 7, 8, 9, 123456)),
    ("trailing_stop_activated", True),
    ("max_favorable_excursion", 0.125),
    ("initial_stop_loss", 118.0),
    ("initial_take_profit", 135.0),
    ("initial_take_profit", None),
    ("last_pnl", -0.03),
    ("last_pnl_time", datetime(2024, 5, 6, 8, 0, 0)),
    ("profit_velocity", 1.5),
    ("breakeven_moved", True),
    ("profit_acceleration", -2.25),
    ("partial_exits_taken", 2),
]


@pytest.mark.parametrize(("name", "value"), WRITES, ids=[f"{n}={v!r}" for n, v in WRITES])
def test_attribute_is_writable(name: str, value: Any) -> None:
    p = long_position()
    setattr(p, name, value)
    got = getattr(p, name)
    assert got == value
    if value is None or isinstance(value, bool):
        assert got is value


def test_volume_profile_analyzer_attribute() -> None:
    p = long_position()
    assert p.volume_profile_analyzer is not None
    marker = object()
    p.volume_profile_analyzer = marker
    assert p.volume_profile_analyzer is marker


def test_writes_change_the_computation() -> None:
    p = long_position(entry_price=100.0, leverage=10, stop_loss=95.0, take_profit=115.0)
    assert p.get_pnl(101.0) == pytest.approx(0.01)
    p.entry_price = 50.0
    assert p.get_pnl(101.0) == pytest.approx(1.02)
    p.side = "short"
    assert p.get_pnl(45.0) == pytest.approx(0.1)
    p.leverage = 3
    assert p.get_leveraged_pnl(45.0) == pytest.approx(0.3)
    p.side = "long"
    p.entry_price = 100.0
    p.leverage = 1
    p.stop_loss = 99.0
    assert p.should_close(98.5) == (True, "stop_loss")
    p.stop_loss = 90.0
    assert p.should_close(98.5) == (False, "")


@pytest.mark.parametrize(
    ("age_hours", "age_factor"), [(0, 1.0), (13, 0.92), (25, 0.85), (49, 0.80)]
)
def test_entry_time_write_changes_the_age(age_hours: int, age_factor: float) -> None:
    # TP multiplier: momentum 1.2, trend x1.15, flat velocity x0.96, then the age factor.
    with frozen_clock(T0) as clock:
        p = long_position(entry_price=100.0, stop_loss=95.0, take_profit=110.0)
        p.entry_time = T0 - timedelta(hours=age_hours)
        assert p.entry_time == T0 - timedelta(hours=age_hours)
        clock.advance(seconds=1)
        p.update_take_profit(100.0, momentum=0.04, trend_strength=0.8)
    m = 1.2 * 1.15 * 0.96 * age_factor
    assert p.take_profit == pytest.approx(100.0 * (1 + 0.1 * m), rel=1e-12)


def test_extra_attributes() -> None:
    p = long_position()
    for name in ["strategy", "rl_strategy", "market_regime", "entry_volatility", "anything_else"]:
        assert not hasattr(p, name)
        with pytest.raises(AttributeError):
            getattr(p, name)
    p.strategy = "trend"
    p.entry_volatility = 0.03
    assert p.strategy == "trend"
    assert p.entry_volatility == 0.03
    assert getattr(p, "rl_strategy", "unknown") == "unknown"
    del p.strategy
    assert not hasattr(p, "strategy")
    assert "entry_volatility" in vars(p)


# --------------------------------------------------------------------------- argument types


def test_constructor_accepts_numeric_like_values() -> None:
    p = Position("X", "long", Decimal("100.5"), 2, 3, 95, 110)
    assert p.entry_price == 100.5
    assert p.amount == 2.0
    assert p.leverage == 3
    assert p.stop_loss == 95.0


CTOR_BAD: list[tuple[str, int, Any]] = [
    ("symbol", 0, 12345),
    ("side", 1, None),
    ("entry_price", 2, "abc"),
    ("amount", 3, "1.0"),
    ("leverage", 4, [10]),
    ("stop_loss", 5, None),
    ("take_profit", 6, "tp"),
]


@pytest.mark.parametrize(("name", "index", "bad"), CTOR_BAD, ids=[c[0] for c in CTOR_BAD])
def test_constructor_type_error_names_the_argument(name: str, index: int, bad: Any) -> None:
    args: list[Any] = ["X/USDT:USDT", "long", 100.0, 1.0, 10, 95.0, 110.0]
    args[index] = bad
    with pytest.raises(TypeError) as info:
        Position(*args)
    message = str(info.value)
    assert name in message
    assert repr(bad) in message


def test_bad_entry_price_example_from_the_brief() -> None:
    with pytest.raises(TypeError, match="entry_price"):
        Position("X", "long", "abc", 1, 1, 1)  # type: ignore[arg-type]


SETTER_BAD: list[tuple[str, Any]] = [
    ("entry_price", "abc"),
    ("amount", "abc"),
    ("leverage", "abc"),
    ("stop_loss", "abc"),
    ("take_profit", "abc"),
    ("highest_price", "abc"),
    ("lowest_price", "abc"),
    ("initial_stop_loss", "abc"),
    ("initial_take_profit", "abc"),
    ("max_favorable_excursion", "abc"),
    ("last_pnl", "abc"),
    ("profit_velocity", "abc"),
    ("profit_acceleration", "abc"),
    ("entry_time", "yesterday"),
    ("last_pnl_time", 12.5),
]


@pytest.mark.parametrize(("name", "bad"), SETTER_BAD, ids=[s[0] for s in SETTER_BAD])
def test_setter_type_error_names_the_attribute(name: str, bad: Any) -> None:
    p = long_position()
    before = getattr(p, name)
    with pytest.raises(TypeError) as info:
        setattr(p, name, bad)
    assert name in str(info.value)
    assert repr(bad) in str(info.value)
    assert getattr(p, name) == before  # unchanged


SETTER_OUT_OF_RANGE = [
    ("entry_price", 0.0, "a finite number > 0"),
    ("entry_price", -1.0, "a finite number > 0"),
    ("amount", float("nan"), "a finite number > 0"),
    ("amount", 0, "a finite number > 0"),
    ("amount", float("inf"), "a finite number > 0"),
    ("leverage", 0, "a finite number > 0"),
    ("leverage", -5.0, "a finite number > 0"),
]


@pytest.mark.parametrize(
    ("name", "bad", "rule"),
    SETTER_OUT_OF_RANGE,
    ids=[f"{n}={b!r}" for n, b, _ in SETTER_OUT_OF_RANGE],
)
def test_setters_refuse_what_the_manager_cannot_trade_with(name: str, bad: Any, rule: str) -> None:
    # Assigned, a NaN amount made every close fail ("contracts must be None or a number > 0")
    # and leverage 0 made every update divide by zero: the stop never acted (§6.17 again).
    p = long_position()
    before = getattr(p, name)
    with pytest.raises(ValueError) as info:
        setattr(p, name, bad)
    assert f"{name} must be {rule}, got {bad!r}" in str(info.value)
    assert getattr(p, name) == before


def test_setters_take_what_the_original_computes() -> None:
    # Stops and targets take any number, as in the original (a NaN stop from an indicator
    # still warming up, a short's target below 0); whole and fractional leverage.
    p = long_position()
    p.take_profit = -10.0
    p.take_profit = None
    p.stop_loss = math.nan
    p.initial_stop_loss = -math.inf
    p.leverage = 7.5
    p.leverage = 20
    p.amount = 1e-9
    assert (p.take_profit, p.leverage, p.amount) == (None, 20, 1e-9)
    assert math.isnan(p.stop_loss)


def test_aware_datetime_is_rejected() -> None:
    p = long_position()
    with pytest.raises(TypeError, match="entry_time"):
        p.entry_time = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(("name", "bad"), [("symbol", 424242), ("side", 424242)])
def test_string_setters_name_the_attribute(name: str, bad: Any) -> None:
    p = long_position()
    with pytest.raises(TypeError) as info:
        setattr(p, name, bad)
    assert name in str(info.value)
    assert repr(bad) in str(info.value)


METHOD_BAD: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    ("get_pnl", "current_price", ("abc",), {}),
    ("get_leveraged_pnl", "current_price", ("abc",), {}),
    ("should_close", "current_price", ("abc",), {}),
    ("update_trailing_stop", "current_price", ("abc", 0.02), {}),
    ("update_trailing_stop", "trailing_percentage", (100.0, "abc"), {}),
    ("update_take_profit", "current_price", ("abc",), {}),
    ("move_to_breakeven", "current_price", ("abc",), {}),
    ("calculate_intelligent_targets", "current_price", ("abc", None, "long"), {}),
]


@pytest.mark.parametrize(
    ("method", "name", "args", "kwargs"),
    METHOD_BAD,
    ids=[f"{m}-{n}" for m, n, _, _ in METHOD_BAD],
)
def test_method_type_error_names_the_argument(
    method: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    p = long_position()
    with pytest.raises(TypeError) as info:
        getattr(p, method)(*args, **kwargs)
    assert name in str(info.value)


KEYWORD_BAD: list[tuple[str, str, dict[str, Any]]] = [
    ("update_trailing_stop", "volatility", {"volatility": "abc"}),
    ("update_trailing_stop", "momentum", {"momentum": "abc"}),
    ("update_take_profit", "momentum", {"momentum": "abc"}),
    ("update_take_profit", "trend_strength", {"trend_strength": "abc"}),
    ("update_take_profit", "volatility", {"volatility": "abc"}),
    ("update_take_profit", "rsi", {"rsi": "abc"}),
    ("move_to_breakeven", "buffer", {"buffer": "abc"}),
]


@pytest.mark.parametrize(
    ("method", "name", "kwargs"), KEYWORD_BAD, ids=[f"{m}-{n}" for m, n, _ in KEYWORD_BAD]
)
def test_keyword_type_error_names_the_argument(
    method: str, name: str, kwargs: dict[str, Any]
) -> None:
    p = long_position()
    args: tuple[Any, ...] = (50500.0, 0.02) if method == "update_trailing_stop" else (50500.0,)
    with pytest.raises(TypeError) as info:
        getattr(p, method)(*args, **kwargs)
    assert name in str(info.value)


def test_keyword_type_errors_are_type_errors() -> None:
    # Whatever the message, a wrong type is a TypeError and leaves the position untouched.
    p = long_position()
    before = p.to_dict()
    for method, _, kwargs in KEYWORD_BAD:
        args: tuple[Any, ...] = (50500.0, 0.02) if method == "update_trailing_stop" else (50500.0,)
        with pytest.raises(TypeError):
            getattr(p, method)(*args, **kwargs)
    assert p.to_dict() == before


def test_include_fees_accepts_truthy_values() -> None:
    p = long_position(entry_price=100.0)
    assert p.get_pnl(101.0, 1) == p.get_pnl(101.0, include_fees=True)
    assert p.get_pnl(101.0, 0) == p.get_pnl(101.0)


# --------------------------------------------------------------------------- repr and docs


def test_repr_is_useful() -> None:
    p = Position("BTC/USDT:USDT", "short", 50000.5, 0.25, 10, 51000.0, 45000.0)
    r = repr(p)
    assert r.startswith("Position(")
    for part in ["BTC/USDT:USDT", "short", "50000.5", "0.25", "10", "51000.0", "45000.0"]:
        assert part in r, part
    assert "None" in repr(Position("X", "long", 1.0, 1.0, 1, 0.9))  # no take profit
    assert "BTC/USDT:USDT" in str(p)


def test_repr_follows_changes() -> None:
    p = long_position()
    p.stop_loss = 49876.5
    assert "49876.5" in repr(p)


def test_docstrings_and_help() -> None:
    assert Position.__doc__ and len(Position.__doc__.strip()) > 40
    for name in [
        "get_pnl",
        "get_leveraged_pnl",
        "should_close",
        "update_trailing_stop",
        "update_take_profit",
        "move_to_breakeven",
        "calculate_intelligent_targets",
    ]:
        doc = getattr(Position, name).__doc__
        assert doc and doc.strip(), f"{name} has no docstring"
    for name in ["stop_loss", "take_profit", "entry_time", "leverage", "highest_price"]:
        doc = getattr(Position, name).__doc__
        assert doc and doc.strip(), f"attribute {name} has no docstring"
    text = pydoc.render_doc(Position, renderer=pydoc.plaintext)  # type: ignore[attr-defined]
    assert "update_trailing_stop" in text
    assert "take_profit" in text


I64_MAX, I64_MIN = 2**63 - 1, -(2**63)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("entry_time", I64_MAX, "entry_time is out of the datetime range"),
        ("entry_time", I64_MIN, "entry_time is out of the datetime range"),
        ("last_pnl_time", I64_MIN, "last_pnl_time is out of the datetime range"),
        ("contract_size", 0.0, "contract_size must be a finite number > 0, got 0"),
        ("contract_size", -1.0, "contract_size must be a finite number > 0, got -1"),
        ("contract_size", float("nan"), "contract_size must be a finite number > 0, got NaN"),
        ("symbol", "", "symbol must not be empty"),
        ("side", "LONG", "side must be 'long' or 'short', got \"LONG\""),
        ("partial_exits_taken", -1, "partial_exits_taken must be >= 0, got -1"),
        ("history", [(I64_MIN, 1.0, 1.0, None)], "history time is out of the datetime range"),
    ],
)
def test_setstate_refuses_what_the_setters_refuse(field: str, value: Any, message: str) -> None:
    # Before, __setstate__ took these: then save_state failed every time and manager.events
    # raised. It checks what load_state checks, and changes nothing when it refuses.
    original = long_position()
    make, args, (fmt, fields, attributes) = original.__reduce__()
    copy = make(*args)
    copy.__setstate__((fmt, dict(fields), attributes))
    before = copy.to_dict()
    with pytest.raises(ValueError, match="pickled Position state: ") as info:
        copy.__setstate__((fmt, {**fields, field: value}, attributes))
    assert message in str(info.value)
    assert copy.to_dict() == before
