"""Constructor options: every wrong type or impossible value raises ``TypeError``/``ValueError``
naming the option and the value (docs/configuration.md); ``manager.config`` shows the options the
manager was built with; values that used to panic or abort are refused where they enter."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from helpers_clients import FakeExchange, make_position

from position_manager_rs import ManagerConfig, Position, PositionManager, VolumeProfile

DOCS = Path(__file__).resolve().parent.parent / "docs"

# (option, value, exception, message): the message must name the option and show the value.
BAD_OPTIONS: list[tuple[str, Any, type[Exception], str]] = [
    ("missing_confirmations", True, TypeError, "missing_confirmations must be an int, not a bool"),
    ("missing_confirmations", "2", TypeError, "missing_confirmations must be an int, got '2'"),
    ("missing_confirmations", 2.0, TypeError, "missing_confirmations must be an int, got 2.0"),
    ("missing_confirmations", 0, ValueError, "missing_confirmations must be an int from 1 to"),
    ("missing_confirmations", 2**64, ValueError, "got 18446744073709551616"),
    ("event_history", -1, ValueError, "event_history must be an int from 0 to 1000000000, got -1"),
    ("event_history", True, TypeError, "event_history must be an int, not a bool, got True"),
    ("event_history", None, TypeError, "event_history must be an int, got None"),
    ("tombstone_limit", 2**70, ValueError, "tombstone_limit must be an int from 0 to 1000000000"),
    ("tombstone_limit", 1.5, TypeError, "tombstone_limit must be an int, got 1.5"),
    ("ticker_retry_delays", (1e20,), ValueError, "ticker_retry_delays must be numbers of seconds"),
    ("ticker_retry_delays", (0.5, -1), ValueError, "from 0 to 3600, got -1"),
    ("ticker_retry_delays", (math.nan,), ValueError, "got nan"),
    ("ticker_retry_delays", "0.5", TypeError, "ticker_retry_delays must be a sequence of numbers"),
    ("ticker_retry_delays", 0.5, TypeError, "ticker_retry_delays must be a sequence of numbers"),
    ("ticker_retry_delays", (True,), TypeError, "ticker_retry_delays item must be a number, not"),
    ("ticker_retry_delays", [0.0] * 101, ValueError, "ticker_retry_delays may hold at most 100"),
    ("snapshot_reuse_seconds", -1, ValueError, "snapshot_reuse_seconds must be a number of"),
    ("snapshot_reuse_seconds", math.inf, ValueError, "snapshot_reuse_seconds must be a number"),
    ("snapshot_reuse_seconds", "5", TypeError, "snapshot_reuse_seconds must be a number, got '5'"),
    (
        "max_concurrent_calls",
        0,
        ValueError,
        "max_concurrent_calls must be an int from 1 to 64, got 0",
    ),
    (
        "max_concurrent_calls",
        65,
        ValueError,
        "max_concurrent_calls must be an int from 1 to 64, got 65",
    ),
    ("max_concurrent_calls", 2**70, ValueError, "max_concurrent_calls must be an int from 1 to 64"),
    ("max_concurrent_calls", True, TypeError, "max_concurrent_calls must be an int, not a bool"),
    ("max_concurrent_calls", 1.5, TypeError, "max_concurrent_calls must be an int, got 1.5"),
    ("max_concurrent_calls", "4", TypeError, "max_concurrent_calls must be an int, got '4'"),
    ("max_concurrent_calls", None, TypeError, "max_concurrent_calls must be an int, got None"),
    ("missing_grace_seconds", 1e10, ValueError, "missing_grace_seconds must be a number of"),
    ("missing_grace_seconds", False, TypeError, "missing_grace_seconds must be a number, not a"),
    ("reopen_hold_seconds", -1, ValueError, "reopen_hold_seconds must be a number of seconds from"),
    ("reopen_hold_seconds", float("inf"), ValueError, "from 0 to 1e9, got inf"),
    ("reopen_hold_seconds", "60", TypeError, "reopen_hold_seconds must be a number, got '60'"),
    ("reopen_hold_seconds", None, TypeError, "reopen_hold_seconds must be a number, got None"),
    ("outcome_confirmations", 0, ValueError, "outcome_confirmations must be an int from 1 to"),
    ("outcome_confirmations", 2.0, TypeError, "outcome_confirmations must be an int, got 2.0"),
    ("outcome_confirmations", True, TypeError, "outcome_confirmations must be an int, not a bool"),
    ("outcome_grace_seconds", -1, ValueError, "outcome_grace_seconds must be a number of seconds"),
    ("outcome_grace_seconds", float("nan"), ValueError, "from 0 to 1e9, got nan"),
    ("outcome_grace_seconds", "5", TypeError, "outcome_grace_seconds must be a number, got '5'"),
    ("tombstone_ttl_seconds", -5, ValueError, "tombstone_ttl_seconds must be a number of seconds"),
    ("tombstone_ttl_seconds", 1e300, ValueError, "from 0 to 1e9, got 1e+300"),
    ("tombstone_ttl_seconds", "1", TypeError, "tombstone_ttl_seconds must be a number, got '1'"),
    ("history_points", 0, ValueError, "history_points must be an int from 1 to 1000000, got 0"),
    ("history_points", 10**6 + 1, ValueError, "history_points must be an int from 1 to 1000000"),
    ("history_points", True, TypeError, "history_points must be an int, not a bool, got True"),
    ("history_points", "32", TypeError, "history_points must be an int, got '32'"),
    ("history_points", None, TypeError, "history_points must be an int, got None"),
    ("logger_name", 1, TypeError, "logger_name must be a str, got 1 (int)"),
    ("position_logger_name", None, TypeError, "position_logger_name must be a str, got None"),
    ("order_logger_name", "a\ud800", ValueError, "order_logger_name must be a str without lone"),
]


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    BAD_OPTIONS,
    ids=[f"{o}={v!r}"[:40] for o, v, _, _ in BAD_OPTIONS],
)
def test_a_bad_option_names_itself_and_its_value(
    option: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        PositionManager(FakeExchange(), **{option: value})
    assert type(info.value) is error  # not OverflowError, not a panic
    assert message in str(info.value)
    assert option in str(info.value)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (True, TypeError, "trailing_stop_percentage must be a number, not a bool, got True"),
        ("0.02", TypeError, "trailing_stop_percentage must be a number, got '0.02'"),
        (-0.01, ValueError, "trailing_stop_percentage must be a number >= 0 and < 1, got -0.01"),
        (1.0, ValueError, "trailing_stop_percentage must be a number >= 0 and < 1, got 1.0"),
        (math.nan, ValueError, "trailing_stop_percentage must be a number >= 0 and < 1, got nan"),
    ],
)
def test_the_trailing_stop_percentage_is_checked_at_construction_and_assignment(
    value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        PositionManager(FakeExchange(), value)
    pm = PositionManager(FakeExchange(), 0.03)
    with pytest.raises(error, match="trailing_stop_percentage"):
        pm.trailing_stop_percentage = value
    assert pm.trailing_stop_percentage == 0.03


def test_numpy_like_ints_and_the_bounds_are_accepted() -> None:
    class Index:  # an int-like object (numpy integers have __index__)
        def __index__(self) -> int:
            return 3

    pm = PositionManager(
        FakeExchange(),
        0.0,
        missing_confirmations=Index(),  # type: ignore[arg-type]
        event_history=0,
        tombstone_limit=10**9,
        ticker_retry_delays=[3600.0] * 100,
        snapshot_reuse_seconds=0,
        max_concurrent_calls=64,
        missing_grace_seconds=1e9,
        tombstone_ttl_seconds=None,
    )
    assert pm.config.missing_confirmations == 3
    assert pm.config.tombstone_ttl_seconds is None


def test_config_shows_the_options_the_manager_was_built_with() -> None:
    pm = PositionManager(
        FakeExchange(),
        0.03,
        missing_confirmations=2,
        ticker_retry_delays=[0.2, 0.4],
        snapshot_reuse_seconds=1,
        max_concurrent_calls=8,
        logger_name="Bot",
        event_history=50,
        tombstone_limit=7,
        missing_grace_seconds=30,
        tombstone_ttl_seconds=600,
        history_points=64,
        reopen_hold_seconds=90,
        outcome_confirmations=3,
        outcome_grace_seconds=2.5,
    )
    config = pm.config
    assert isinstance(config, ManagerConfig)
    assert config.to_dict() == {
        "trailing_stop_percentage": 0.03,
        "missing_confirmations": 2,
        "ticker_retry_delays": (0.2, 0.4),
        "snapshot_reuse_seconds": 1.0,
        "max_concurrent_calls": 8,
        "logger_name": "Bot",
        "position_logger_name": "TradingBot.Position",
        "order_logger_name": "TradingBot.Order",
        "event_history": 50,
        "tombstone_limit": 7,
        "missing_grace_seconds": 30.0,
        "tombstone_ttl_seconds": 600.0,
        "history_points": 64,
        "position_mode": "oneway",
        "reopen_hold_seconds": 90.0,
        "outcome_confirmations": 3,
        "outcome_grace_seconds": 2.5,
    }
    assert repr(config).startswith("ManagerConfig(trailing_stop_percentage=0.03, ")
    # Read-only.
    with pytest.raises(AttributeError):
        config.missing_confirmations = 5  # type: ignore[misc]
    # The same options build an equal manager configuration.
    again = PositionManager(FakeExchange(), **config.to_dict())
    assert again.config == config and again.config != PositionManager(FakeExchange()).config
    # Changing the live value later does not rewrite history.
    pm.trailing_stop_percentage = 0.05
    assert pm.config.trailing_stop_percentage == 0.03 and pm.trailing_stop_percentage == 0.05


def test_the_defaults_reproduce_the_original() -> None:
    assert PositionManager(FakeExchange()).config.to_dict() == {
        "trailing_stop_percentage": 0.02,
        "missing_confirmations": 1,
        "ticker_retry_delays": (0.5, 1.0),
        "snapshot_reuse_seconds": 5.0,
        "max_concurrent_calls": 1,
        "logger_name": "TradingBot",
        "position_logger_name": "TradingBot.Position",
        "order_logger_name": "TradingBot.Order",
        "event_history": 10000,
        "tombstone_limit": 1000,
        "missing_grace_seconds": 0.0,
        "tombstone_ttl_seconds": 86400.0,
        "history_points": 32,
        "position_mode": "oneway",
        "reopen_hold_seconds": 0.0,
        # Governs what the original never did (settling orders whose answer was lost), and a
        # fill no list has shown yet, which the original dropped on one list's absence
        # (docs/differences.md).
        "outcome_confirmations": 2,
        "outcome_grace_seconds": 0.0,
    }


def test_every_option_is_in_the_configuration_reference() -> None:
    text = (DOCS / "configuration.md").read_text()
    for option in PositionManager(FakeExchange()).config.to_dict():
        assert f"`{option}`" in text, option
    assert "manager.config" in text


def test_values_that_used_to_panic_or_abort_are_refused_where_they_enter() -> None:
    # ticker_retry_delays=(1e20,) raised PanicException inside the update cycle.
    with pytest.raises(ValueError, match="ticker_retry_delays"):
        PositionManager(FakeExchange(), ticker_retry_delays=(1e20,))
    # num_bins=2**40 aborted the interpreter (allocation failure).
    analyzer = VolumeProfile()
    rows = [[i, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0] for i in range(30)]
    with pytest.raises(ValueError, match=r"num_bins must be an int from 0 to 100000, got 1099"):
        analyzer.calculate_volume_profile(rows, 2**40)
    with pytest.raises(TypeError, match="num_bins must be an int, not a bool"):
        analyzer.calculate_volume_profile(rows, True)
    assert analyzer.calculate_volume_profile(rows, 0)["poc"] is None
    assert analyzer.calculate_volume_profile(rows, 100_000)["poc"] is not None


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (2, 0.0, "entry_price must be a finite number > 0, got 0.0"),
        (2, math.nan, "entry_price must be a finite number > 0, got nan"),
        (3, -1, "amount must be a finite number > 0, got -1"),
        (4, math.inf, "leverage must be a finite number > 0, got inf"),
        (5, -0.5, "stop_loss must be a finite number >= 0, got -0.5"),
        (6, math.nan, "take_profit must be a finite number >= 0, got nan"),
        (2, 10**400, "entry_price is too large to be a float"),
    ],
)
def test_position_numbers_are_range_checked(index: int, value: Any, message: str) -> None:
    args: list[Any] = ["X/USDT:USDT", "long", 100.0, 1.0, 10, 95.0, 110.0]
    args[index] = value
    with pytest.raises(ValueError) as info:
        Position(*args)
    assert message in str(info.value)


def test_position_method_arguments_must_be_finite_and_not_bools() -> None:
    p = make_position("X/USDT:USDT")
    for call in (
        lambda: p.get_pnl(math.nan),
        lambda: p.should_close(math.inf),
        lambda: p.update_trailing_stop(100.0, math.nan),
        lambda: p.update_take_profit(100.0, rsi=math.inf),
        lambda: p.move_to_breakeven(100.0, buffer=math.nan),
    ):
        with pytest.raises(ValueError, match="must be a finite number"):
            call()
    with pytest.raises(TypeError, match="current_price must be a number, not a bool"):
        p.get_pnl(True)
    with pytest.raises(TypeError, match="partial_exits_taken must be an int, not a bool"):
        p.partial_exits_taken = True
    with pytest.raises(ValueError, match="partial_exits_taken must be an int from 0"):
        p.partial_exits_taken = -1
    p.partial_exits_taken = 5
    assert p.partial_exits_taken == 5


def test_numpys_bool_is_no_number_either() -> None:
    # numpy.True_ has __float__: it passed for 1.0 where True is refused, and an order of one
    # contract was sent for amount=numpy.True_ (found by an audit, 2026-12-06).
    np = pytest.importorskip("numpy")
    for flag in (np.True_, np.False_):
        with pytest.raises(TypeError, match=r"snapshot_reuse_seconds must be a number, not a bool"):
            PositionManager(FakeExchange(), snapshot_reuse_seconds=flag)
        with pytest.raises(TypeError, match=r"entry_price must be a number, not a bool"):
            Position("BTC/USDT:USDT", "long", flag, 1.0, 10, 90.0)
    exchange = FakeExchange()
    pm = PositionManager(exchange)
    with pytest.raises(TypeError, match=r"amount must be a number, not a bool"):
        pm.open_position("BTC/USDT:USDT", "BUY", np.True_, 10)
    assert [c for c in exchange.calls if c[0] == "create_market_order"] == []
    # numpy's numbers stay numbers.
    assert Position("BTC/USDT:USDT", "long", np.float64(100.0), np.int64(2), 10, 90.0).amount == 2
