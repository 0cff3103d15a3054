"""A bounded fuzz test of the Python API: constructors, options and method arguments drawn from
arbitrary Python values (wrong types, bools, NaN, infinities, huge and negative ints, lone
surrogates, nested containers) raise only ``TypeError``, ``ValueError`` or ``KeyError`` — never
a panic (``pyo3_runtime.PanicException``), an ``OverflowError``, a ``SystemError`` or an abort.

CI runs a fixed, modest set of examples (``derandomize``); ``PMRS_LONG=1`` runs thousands of fresh
ones per target. The only other exception allowed is the original's ``ZeroDivisionError`` from
``AdvancedExitStrategy.get_comprehensive_exit_signal`` for a leverage of 0
(docs/differences.md).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

import pytest
from helpers_clients import FakeExchange, make_position
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from position_manager_rs import (
    AdvancedExitStrategy,
    Position,
    PositionManager,
    VolumeProfile,
    format_pnl_usd,
    format_price,
)
from position_manager_rs._core import SmartExitOptimizer

# A client no test here calls (typed as one for the stubs).
NO_CLIENT: Any = object()

LONG = os.environ.get("PMRS_LONG") == "1"
FUZZ = settings(
    max_examples=2_000 if LONG else 60,
    derandomize=not LONG,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALLOWED: tuple[type[BaseException], ...] = (TypeError, ValueError, KeyError)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 1, 2**63, 2**64, -(2**63) - 1, 10**400, 1e20, 1e308, 5e-324]),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["long", "short", "LONG", "BUY", "SELL", "", "\ud800", "a\udcffb"]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, st.binary(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(texts, st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)
candles = st.lists(st.lists(numbers, min_size=6, max_size=6), max_size=30)
any_value = st.one_of(values, candles, st.just(object()), st.just(float))


def outcome(call: Callable[[], Any], allowed: tuple[type[BaseException], ...] = ALLOWED) -> None:
    """Runs ``call``; any exception but the allowed ones (a panic included) fails the test."""
    try:
        call()
    except allowed:
        pass
    except BaseException as e:
        pytest.fail(f"{type(e).__module__}.{type(e).__qualname__}: {e}")


def valid_position() -> Position:
    return Position("BTC/USDT:USDT", "long", 100.0, 1.0, 10, 95.0, 110.0)


POSITION_ARGS: list[Any] = ["BTC/USDT:USDT", "long", 100.0, 1.0, 10, 95.0, 110.0]


@FUZZ
@given(replace=st.dictionaries(st.integers(0, 6), any_value, max_size=7))
def test_position_constructor(replace: dict[int, Any]) -> None:
    args: list[Any] = list(POSITION_ARGS)
    for index, value in replace.items():
        args[index] = value
    outcome(lambda: Position(*args))


POSITION_METHODS = [
    ("get_pnl", 2),
    ("get_leveraged_pnl", 2),
    ("should_close", 1),
    ("update_trailing_stop", 4),
    ("update_take_profit", 6),
    ("move_to_breakeven", 2),
    ("calculate_intelligent_targets", 3),
    ("adjust_take_profit_with_volume_profile", 2),
]


@FUZZ
@given(
    method=st.sampled_from(POSITION_METHODS),
    args=st.lists(any_value, max_size=6),
    side=st.sampled_from(["long", "short"]),
)
def test_position_methods(method: tuple[str, int], args: list[Any], side: str) -> None:
    name, arity = method
    p = Position("BTC/USDT:USDT", side, 100.0, 1.0, 10, 95.0, 110.0)
    outcome(lambda: getattr(p, name)(*args[:arity]))


SETTABLE = [
    "symbol",
    "side",
    "entry_price",
    "amount",
    "leverage",
    "stop_loss",
    "take_profit",
    "highest_price",
    "lowest_price",
    "entry_time",
    "trailing_stop_activated",
    "max_favorable_excursion",
    "initial_stop_loss",
    "initial_take_profit",
    "last_pnl",
    "last_pnl_time",
    "profit_velocity",
    "breakeven_moved",
    "profit_acceleration",
    "partial_exits_taken",
    "entry_price_estimated",
    "contract_size",
]


@FUZZ
@given(name=st.sampled_from(SETTABLE), value=any_value, price=numbers)
def test_position_attributes_then_every_method(name: str, value: Any, price: Any) -> None:
    p = valid_position()
    outcome(lambda: setattr(p, name, value))
    for method, arity in POSITION_METHODS:
        args = [price, {}, "long"][:arity] if method != "update_trailing_stop" else [price, 0.02]
        outcome(lambda m=method, a=args: getattr(p, m)(*a))  # type: ignore[misc]
    outcome(lambda: (repr(p), str(p), p.to_dict(), p.history))


OPTIONS = [
    "missing_confirmations",
    "ticker_retry_delays",
    "snapshot_reuse_seconds",
    "logger_name",
    "position_logger_name",
    "order_logger_name",
    "event_history",
    "tombstone_limit",
    "missing_grace_seconds",
    "tombstone_ttl_seconds",
    "reopen_hold_seconds",
]


@FUZZ
@given(
    trailing=st.one_of(st.just(0.02), any_value),
    options=st.dictionaries(st.sampled_from(OPTIONS), any_value, max_size=4),
)
def test_manager_options(trailing: Any, options: dict[str, Any]) -> None:
    def build() -> None:
        pm = PositionManager(FakeExchange(), trailing, **options)
        # A manager that was built works: its config reads back, a cycle runs.
        assert pm.config.missing_confirmations >= 1
        pm.positions["BTC/USDT:USDT"] = make_position("BTC/USDT:USDT")
        list(pm.update_positions())

    outcome(build)


MANAGER_METHODS = [
    ("open_position", 7),
    ("scale_in_position", 3),
    ("scale_out_position", 3),
    ("modify_position_targets", 3),
    ("safe_update_position_targets", 4),
    ("close_position", 2),
    ("validate_position_parameters", 4),
    ("get_position", 1),
    ("has_position", 1),
]


@FUZZ
@given(
    method=st.sampled_from(MANAGER_METHODS),
    args=st.lists(any_value, max_size=7),
    symbol=st.sampled_from(["BTC/USDT:USDT", "ETH/USDT:USDT", None]),
)
def test_manager_methods(method: tuple[str, int], args: list[Any], symbol: str | None) -> None:
    name, arity = method
    client = FakeExchange([{"symbol": "BTC/USDT:USDT", "contracts": 1.0, "side": "long"}])
    pm = PositionManager(client, 0.02, ticker_retry_delays=())
    pm.positions["BTC/USDT:USDT"] = make_position("BTC/USDT:USDT")
    if symbol is not None and args:
        args = [symbol, *args[1:]]
    outcome(lambda: getattr(pm, name)(*args[:arity]))
    # The manager is still usable afterwards.
    list(pm.update_positions())


@FUZZ
@given(key=any_value, value=st.one_of(any_value, st.builds(valid_position)), tsp=any_value)
def test_manager_assignments(key: Any, value: Any, tsp: Any) -> None:
    pm = PositionManager(FakeExchange(), 0.02)
    outcome(lambda: pm.positions.__setitem__(key, value))
    outcome(lambda: pm.positions.get(key))
    outcome(lambda: pm.positions.pop(key, None))
    outcome(lambda: setattr(pm, "trailing_stop_percentage", tsp))
    assert math.isfinite(pm.trailing_stop_percentage)


@FUZZ
@given(df=st.one_of(candles, any_value), num_bins=any_value, price=any_value, vp=any_value)
def test_volume_profile(df: Any, num_bins: Any, price: Any, vp: Any) -> None:
    analyzer = VolumeProfile()
    outcome(lambda: analyzer.calculate_volume_profile(df, num_bins))
    outcome(lambda: analyzer.calculate_volume_profile(df))
    outcome(lambda: analyzer.get_support_resistance_from_volume(price, vp))


position_data = st.fixed_dictionaries(
    {
        "side": st.one_of(st.sampled_from(["long", "short"]), any_value),
        "entry_price": st.one_of(st.just(100.0), any_value),
        "current_price": st.one_of(st.just(101.0), any_value),
        "current_pnl_pct": st.one_of(st.just(0.05), any_value),
    },
    optional={
        "peak_pnl_pct": any_value,
        "leverage": any_value,
        "entry_time": any_value,
        "max_hold_minutes": any_value,
        "entry_volatility": any_value,
        "stop_loss": any_value,
        "take_profit": any_value,
        "partial_exits_taken": any_value,
    },
)
market_data = st.dictionaries(
    st.sampled_from(["momentum", "rsi", "volatility", "trend_strength", "current_volatility"]),
    any_value,
    max_size=5,
)


@FUZZ
@given(position=st.one_of(position_data, any_value), market=st.one_of(market_data, any_value))
def test_advanced_exit_strategy(position: Any, market: Any) -> None:
    strategy = AdvancedExitStrategy()
    outcome(
        lambda: strategy.get_comprehensive_exit_signal(position, market),
        (*ALLOWED, ZeroDivisionError),
    )


@FUZZ
@given(args=st.lists(any_value, min_size=7, max_size=7), side=any_value)
def test_smart_exit_optimizer(args: list[Any], side: Any) -> None:
    optimizer = SmartExitOptimizer()
    outcome(lambda: optimizer.should_exit_early(*args))
    outcome(lambda: optimizer.should_exit_early(*args, side=side))


file_names = st.one_of(
    st.text(min_size=1, max_size=300).filter(lambda n: "/" not in n and n not in (".", "..")),
    st.binary(min_size=1, max_size=300).filter(lambda n: b"/" not in n and n not in (b".", b"..")),
)


@FUZZ
@given(name=file_names, attribute=any_value, other=any_value)
def test_state_file_paths_and_attributes(
    tmp_path_factory: pytest.TempPathFactory, name: str | bytes, attribute: Any, other: Any
) -> None:
    """Any file name under a temporary folder (NUL bytes, non-UTF-8, too long) and any attribute:
    what Python's open() would refuse is an OSError or a ValueError, never anything else."""
    folder = tmp_path_factory.mktemp("names")
    path = os.path.join(os.fsencode(folder), name) if isinstance(name, bytes) else folder / name
    pm = PositionManager(NO_CLIENT)
    p = valid_position()
    p.attribute = attribute
    pm.positions[p.symbol] = p
    io_allowed = (*ALLOWED, OSError)
    outcome(lambda: pm.save_state(path), io_allowed)
    outcome(lambda: PositionManager(NO_CLIENT).load_state(path), io_allowed)
    if not isinstance(other, (str, bytes)):  # a str would name a file in the working folder
        outcome(lambda: pm.save_state(other), io_allowed)


@FUZZ
@given(x=any_value)
def test_formatting(x: Any) -> None:
    outcome(lambda: format_price(x))
    outcome(lambda: format_pnl_usd(x))
