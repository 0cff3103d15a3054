"""The contract for user-supplied exit objects (docs/exit-objects.md), statement by statement:
when they are called, with what, how their answers are read, and what a bad answer does (one
WARNING naming the method, what came back and what was expected; the position holds).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from test_adaptive_cycle import CandleClient, manager_with
from test_exit_strategies import HOLD, Recorder

from position_manager_rs import ManualClock, Position, PositionManager

DOC = Path(__file__).resolve().parents[1] / "docs" / "exit-objects.md"
MAIN = "TradingBot"
S = "BTC/USDT:USDT"
NO_CLIENT: Any = object()


def long_position(stop: float = 90.0, amount: float = 4.0) -> Position:
    return Position(S, "long", 100.0, amount, 10, stop, None)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ----------------------------------------------------------------------------- setting them


@pytest.mark.parametrize(
    ("option", "method"),
    [
        ("advanced_exit_strategy", "get_comprehensive_exit_signal"),
        ("smart_exit_optimizer", "should_exit_early"),
    ],
)
def test_an_object_without_the_method_is_a_type_error_naming_all(option: str, method: str) -> None:
    message = rf"^{option} must have a {method}\(\) method, got 42 \(int\)$"
    options: dict[str, Any] = {option: 42}
    with pytest.raises(TypeError, match=message):
        PositionManager(NO_CLIENT, **options)
    pm = PositionManager(NO_CLIENT)
    with pytest.raises(TypeError, match=message):
        setattr(pm, option, 42)


# ----------------------------------------------------------------------------- calls


class Journal(Recorder):
    """A Recorder that also notes the order of calls, with the client's closes."""

    def __init__(self, log: list[str], **answers: Any) -> None:
        super().__init__(**answers)
        self.log = log

    def get_comprehensive_exit_signal(self, *args: Any, **kwargs: Any) -> Any:
        self.log.append("advanced")
        return super().get_comprehensive_exit_signal(*args, **kwargs)

    def should_exit_early(self, *args: Any, **kwargs: Any) -> Any:
        self.log.append("smart")
        return super().should_exit_early(*args, **kwargs)


def test_advanced_then_smart_then_should_close() -> None:
    log: list[str] = []
    client = CandleClient(99.4)  # below the stop: should_close closes it
    mine = Journal(log)
    pm = manager_with(
        client, long_position(stop=99.5), advanced_exit_strategy=mine, smart_exit_optimizer=mine
    )
    assert [s for s, _, _ in pm.update_positions()] == [S]
    assert log == ["advanced", "smart"]
    assert pm.events[-1]["reason"] == "stop_loss"


def test_a_full_exit_ends_the_positions_cycle_and_a_partial_one_does_not() -> None:
    log: list[str] = []
    client = CandleClient(100.3)
    mine = Journal(log, advanced=(True, "mine", None))
    pm = manager_with(
        client, long_position(), advanced_exit_strategy=mine, smart_exit_optimizer=mine
    )
    assert [s for s, _, _ in pm.update_positions()] == [S]
    assert log == ["advanced"]
    log.clear()
    mine.advanced_answer = (False, "First target reached (3.00%)", 0.25)
    pm2 = manager_with(
        CandleClient(100.3), long_position(), advanced_exit_strategy=mine, smart_exit_optimizer=mine
    )
    assert list(pm2.update_positions()) == []
    assert log == ["advanced", "smart"]


def test_arguments_without_candles_and_by_the_managers_clock() -> None:
    clock = ManualClock(datetime(2026, 2, 3, 4, 5, 6))
    mine = Recorder()
    client = CandleClient(100.3)
    pm = PositionManager(
        client,
        0.02,
        ticker_retry_delays=(),
        clock=clock,
        advanced_exit_strategy=mine,
        smart_exit_optimizer=mine,
    )
    client.list_position(S, "long", 4.0)
    pm.sync_existing_positions()
    clock.advance(minutes=90)
    list(pm.update_positions())
    ((args, kwargs),) = mine.advanced_calls
    position_data, market_data = args
    assert type(position_data) is dict and type(market_data) is dict
    assert position_data["entry_time"] == datetime(2026, 2, 3, 4, 5, 6)
    assert position_data["current_price"] == 100.3
    assert market_data == {"volatility": 0.03, "momentum": 0.0, "rsi": 50.0, "trend_strength": 0.5}
    ((args, kwargs),) = mine.smart_calls
    assert args == ()
    assert kwargs["position_duration_minutes"] == 90.0
    assert kwargs["volume_ratio"] == 1.0 and kwargs["trend_weakening"] is False


def test_they_may_call_the_manager() -> None:
    seen: list[int] = []

    class Reentrant(Recorder):
        def get_comprehensive_exit_signal(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(pm.get_open_positions_count())
            seen.append(len(pm.positions))
            return super().get_comprehensive_exit_signal(*args, **kwargs)

    pm = manager_with(CandleClient(100.3), long_position(), advanced_exit_strategy=Reentrant())
    assert list(pm.update_positions()) == []
    assert seen == [1, 1]


# ----------------------------------------------------------------------------- answers


class Run(NamedTuple):
    pm: PositionManager
    position: Position
    client: CandleClient
    closed: list[tuple[str, float, Position]]


def run_advanced(answer: Any, price: float = 100.3) -> Run:
    """One update cycle of a long position with an advanced strategy answering ``answer``."""
    client = CandleClient(price)
    p = long_position()
    pm = manager_with(client, p, advanced_exit_strategy=Recorder(advanced=answer))
    return Run(pm, p, client, list(pm.update_positions()))


class Truthy:
    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return "my reason"


def test_a_truthy_should_exit_closes_with_the_reason_as_text() -> None:
    run = run_advanced((Truthy(), Truthy(), float("nan")))
    assert [s for s, _, _ in run.closed] == [S]
    assert run.pm.events[-1]["kind"] == "closed" and run.pm.events[-1]["reason"] == "my reason"


def test_any_three_item_sequence_is_an_answer() -> None:
    run = run_advanced([True, "as a list", None])
    assert [s for s, _, _ in run.closed] == [S]
    assert run.pm.events[-1]["reason"] == "as a list"


def test_false_with_no_action_holds() -> None:
    run = run_advanced((False, "nothing", None))
    assert run.closed == [] and run.client.orders == [] and run.pm.positions[S] is run.position
    assert [e["kind"] for e in run.pm.events] == ["added"]


def test_a_fraction_sells_that_part_and_a_named_target_only_once() -> None:
    client = CandleClient(100.3)
    p = long_position()
    mine = Recorder(advanced=(False, "Second target reached (4.00%)", 0.25))
    pm = manager_with(client, p, advanced_exit_strategy=mine)
    assert list(pm.update_positions()) == []
    assert [o[:3] for o in client.orders] == [(S, "sell", 1.0)]
    assert p.partial_exits_taken == 0b10 and pm.events[-1]["kind"] == "partial_close"
    list(pm.update_positions())
    assert len(client.orders) == 1
    mine.advanced_answer = (False, "my own scale-out", 0.25)  # not a named target: every time
    list(pm.update_positions())
    list(pm.update_positions())
    assert len(client.orders) == 3


def test_a_price_moves_the_stop_only_tighter() -> None:
    client = CandleClient(100.3)
    p = long_position(stop=95.0)
    mine = Recorder(advanced=(False, "raise it", 99.0))
    pm = manager_with(client, p, advanced_exit_strategy=mine)
    list(pm.update_positions())
    assert p.stop_loss == 99.0 and client.orders == []
    mine.advanced_answer = (False, "lower it", 50.0)
    list(pm.update_positions())
    assert p.stop_loss == 99.0


def test_the_breakeven_reason_makes_a_small_action_a_price() -> None:
    client = CandleClient(0.8)
    p = Position(S, "long", 0.5, 100.0, 10, 0.4, None)  # a coin below 1 USDT
    pm = manager_with(client, p, advanced_exit_strategy=Recorder(advanced=(False, "x", 0.9)))
    pm.advanced_exit_strategy = Recorder(advanced=(False, "Breakeven+ stop update", 0.6))
    list(pm.update_positions())
    assert p.stop_loss >= 0.6 and client.orders == []


class GetOnly:
    """A mapping-like answer that only has ``get``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            {**HOLD, "should_exit": True, "confidence": 0.71, "reason_text": "mine"},
            "mine (confidence: 0.71)",
        ),
        ({**HOLD, "should_exit": True, "confidence": 0.7, "reason_text": "mine"}, None),
        ({**HOLD, "should_exit": False, "confidence": 1.0, "reason_text": "mine"}, None),
        (
            GetOnly({**HOLD, "should_exit": 1, "confidence": 0.9, "reason_text": "mine"}),
            "mine (confidence: 0.90)",
        ),
        (
            {"should_exit": True, "confidence": 0.9, "score": 5, "reason_text": 7},
            "7 (confidence: 0.90)",
        ),
    ],
    ids=["above-0.7", "at-0.7", "no-exit", "get-only", "no-reasons-key"],
)
def test_smart_answers(answer: Any, reason: str | None) -> None:
    client = CandleClient(100.1)
    pm = manager_with(client, long_position(), smart_exit_optimizer=Recorder(smart=answer))
    closed = list(pm.update_positions())
    if reason is None:
        assert closed == []
    else:
        assert [s for s, _, _ in closed] == [S]
        assert pm.events[-1]["reason"] == f"Smart exit: {reason}"


# ----------------------------------------------------------------------------- bad answers

ADVANCED = "Advanced exit strategy failed for BTC/USDT:USDT, holding this cycle: "
SMART = "Smart exit optimizer error for BTC/USDT:USDT: "
EXPECT_TUPLE = "expected a tuple (should_exit, reason, action)"
EXPECT_ACTION = "expected None (hold) or a number > 0 (a fraction to sell, or a stop price)"
EXPECT_DICT = "expected a dict with should_exit, confidence, score and reason_text"


class Unprintable:
    def __str__(self) -> str:
        raise ValueError("no text")


class NoTruth:
    def __bool__(self) -> bool:
        raise ValueError("ambiguous")

    def __repr__(self) -> str:
        return "NoTruth()"


class Endless:
    """An answer that never ends (``itertools.repeat(False)`` returned by mistake); it counts
    the items read, and ends a read that goes on past 1000 items instead of eating memory."""

    def __init__(self) -> None:
        self.reads = 0

    def __iter__(self) -> Endless:
        return self

    def __next__(self) -> bool:
        self.reads += 1
        if self.reads > 1000:
            raise RuntimeError("read on and on")
        return False

    def __repr__(self) -> str:
        return "Endless()"


BAD_ADVANCED = [
    (RuntimeError("feed down"), "get_comprehensive_exit_signal() raised RuntimeError: feed down"),
    (None, f"get_comprehensive_exit_signal() returned None (NoneType), {EXPECT_TUPLE}"),
    ("exit", f"get_comprehensive_exit_signal() returned 'exit' (str), {EXPECT_TUPLE}"),
    ({"a": 1}, f"get_comprehensive_exit_signal() returned {{'a': 1}} (dict), {EXPECT_TUPLE}"),
    (42, f"get_comprehensive_exit_signal() returned 42 (int), {EXPECT_TUPLE}"),
    (
        (True, "too short"),
        "get_comprehensive_exit_signal() returned 2 item(s), (True, 'too short') (tuple), "
        "expected 3: (should_exit, reason, action)",
    ),
    (
        (False, "x", None, 1.0),
        "get_comprehensive_exit_signal() returned more than 3 items, (False, 'x', None, 1.0) "
        "(tuple), expected 3: (should_exit, reason, action)",
    ),
    (
        Endless(),
        "get_comprehensive_exit_signal() returned more than 3 items, Endless() (Endless), "
        "expected 3: (should_exit, reason, action)",
    ),
    (
        (False, "x", "0.5"),
        f"get_comprehensive_exit_signal() returned action '0.5' (str), {EXPECT_ACTION}",
    ),
    (
        (True, "x", "0.5"),
        f"get_comprehensive_exit_signal() returned action '0.5' (str), {EXPECT_ACTION}",
    ),
    (
        (False, "x", True),
        f"get_comprehensive_exit_signal() returned action True (bool), {EXPECT_ACTION}",
    ),
    (
        (False, "x", float("nan")),
        f"get_comprehensive_exit_signal() returned action nan (float), {EXPECT_ACTION}",
    ),
    (
        (False, "x", -2.0),
        f"get_comprehensive_exit_signal() returned action -2.0 (float), {EXPECT_ACTION}",
    ),
    ((False, "x", 0), f"get_comprehensive_exit_signal() returned action 0 (int), {EXPECT_ACTION}"),
    (
        (NoTruth(), "x", None),
        "get_comprehensive_exit_signal() returned should_exit NoTruth() (NoTruth), whose truth "
        "value cannot be read: ValueError: ambiguous",
    ),
    (
        (False, Unprintable(), None),
        "get_comprehensive_exit_signal() returned a reason that str() cannot print: "
        "ValueError: no text",
    ),
]


@pytest.mark.parametrize(("answer", "why"), BAD_ADVANCED, ids=[w[:60] for _, w in BAD_ADVANCED])
def test_a_bad_advanced_answer_is_one_warning_saying_what_was_wrong(
    caplog: pytest.LogCaptureFixture, answer: Any, why: str
) -> None:
    caplog.set_level(logging.WARNING, logger=MAIN)
    run = run_advanced(answer)
    assert warnings(caplog) == [ADVANCED + why]
    assert run.closed == [] and run.client.orders == [] and run.pm.positions[S] is run.position


def test_an_answer_is_read_no_further_than_one_item_past_three() -> None:
    # The whole answer was collected first: an endless one (an audit returned
    # itertools.repeat(False)) ate memory until the process aborted.
    answer = Endless()
    run = run_advanced(answer)
    assert answer.reads == 4
    assert run.closed == [] and run.pm.positions[S] is run.position


BAD_SMART = [
    (KeyError("x"), "should_exit_early() raised KeyError: 'x'"),
    (None, f"should_exit_early() returned None (NoneType), {EXPECT_DICT}"),
    ([1], f"should_exit_early() returned [1] (list), {EXPECT_DICT}"),
    ("abc", f"should_exit_early() returned 'abc' (str), {EXPECT_DICT}"),
    (
        {"should_exit": True, "confidence": 0.9, "reason_text": "x"},
        "should_exit_early() returned a dict without 'score' (its keys: ['should_exit', "
        "'confidence', 'reason_text']), expected should_exit, confidence, score and reason_text",
    ),
    (
        {**HOLD, "confidence": "high"},
        "should_exit_early() returned confidence 'high' (str), expected a number",
    ),
    ({**HOLD, "score": True}, "should_exit_early() returned score True (bool), expected a number"),
    (
        {**HOLD, "should_exit": NoTruth()},
        "should_exit_early() returned should_exit NoTruth() (NoTruth), whose truth value "
        "cannot be read: ValueError: ambiguous",
    ),
    (
        {**HOLD, "reason_text": Unprintable()},
        "should_exit_early() returned a reason_text that str() cannot print: ValueError: no text",
    ),
]


@pytest.mark.parametrize(("answer", "why"), BAD_SMART, ids=[w[:60] for _, w in BAD_SMART])
def test_a_bad_smart_answer_is_one_warning_saying_what_was_wrong(
    caplog: pytest.LogCaptureFixture, answer: Any, why: str
) -> None:
    caplog.set_level(logging.WARNING, logger=MAIN)
    client = CandleClient(100.1)
    p = long_position()
    pm = manager_with(client, p, smart_exit_optimizer=Recorder(smart=answer))
    assert list(pm.update_positions()) == []
    assert warnings(caplog) == [SMART + why]
    assert pm.positions[S] is p


def test_the_next_cycle_asks_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=MAIN)
    client = CandleClient(100.3)
    mine = Recorder(advanced=None)
    pm = manager_with(client, long_position(), advanced_exit_strategy=mine)
    list(pm.update_positions())
    mine.advanced_answer = (True, "now it works", None)
    assert [s for s, _, _ in pm.update_positions()] == [S]
    assert len(mine.advanced_calls) == 2 and len(warnings(caplog)) == 1


def documented_warnings() -> Iterator[str]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```text\n(.*?)```", text, re.S)
    assert block is not None
    yield from block.group(1).splitlines()


def test_the_documented_warnings_are_what_the_manager_logs() -> None:
    produced = {ADVANCED + why for _, why in BAD_ADVANCED} | {SMART + why for _, why in BAD_SMART}
    documented = list(documented_warnings())
    assert len(documented) >= 6
    for line in documented:
        assert line in produced, line
