"""Copies like the original: ``copy.copy``, ``copy.deepcopy`` and ``pickle`` of a ``Position``,
of ``manager.positions`` (a plain dict) and of ``manager.events``; events as data (JSON)."""

from __future__ import annotations

import copy
import json
import pickle
import re
import subprocess
import sys
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers_clients import FakeExchange, make_position

from position_manager_rs import Position, PositionManager
from position_manager_rs.events import EventKind, EventReason, event_from_json, event_to_json
from position_manager_rs.testing import frozen_clock

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def worked() -> Position:
    p = Position(BTC, "short", 50000.5, 0.125, 7.5, 51000.25, 45000.0)
    p.lowest_price = 49000.5
    p.trailing_stop_activated = True
    p.max_favorable_excursion = 0.1 + 0.2
    p.partial_exits_taken = 3
    p.contract_size = 0.001
    p.entry_time = datetime(2025, 3, 4, 5, 6, 7, 891011)
    p.strategy = "breakout"
    p.params = {"layers": [64, 64], "gamma": 0.99}
    return p


def same_position(a: Position, b: Position) -> None:
    assert a is not b
    assert type(a) is type(b)
    assert a.to_dict() == b.to_dict()
    assert vars(a) == vars(b)
    assert a.history == b.history


class BotPosition(Position):
    """A bot's own subclass (with an initialiser of its own)."""

    def __init__(self, *args: Any) -> None:
        self.note = "mine"


@pytest.mark.parametrize(
    "copier",
    [copy.copy, copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_a_position_copies_with_its_fields_history_and_attributes(copier: Any) -> None:
    client = FakeExchange([{"symbol": BTC, "contracts": 1.0, "side": "long"}])
    client.prices[BTC] = 100.2  # no exit: the position stays open
    pm = PositionManager(client, 0.02, ticker_retry_delays=())
    original = make_position(BTC)
    pm.positions[BTC] = original
    assert list(pm.update_positions()) == []  # a price history to copy
    assert len(original.history) == 1
    # Then every field and attribute different from a fresh position's.
    for name, value in vars(worked()).items():
        setattr(original, name, value)
    original.partial_exits_taken = 3
    original.contract_size = 0.001
    original.trailing_stop_activated = True
    clone = copier(original)
    same_position(clone, original)
    # Detached: the manager still tracks the original only, and changes do not leak.
    assert pm.positions[BTC] is original
    clone.stop_loss = 1.0
    clone.strategy = "other"
    assert original.stop_loss != 1.0 and original.strategy == "breakout"


@pytest.mark.parametrize(
    "copier",
    [copy.copy, copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_a_copy_keeps_a_history_longer_than_the_default(copier: Any) -> None:
    client = FakeExchange([{"symbol": BTC, "contracts": 1.0, "side": "long"}])
    pm = PositionManager(client, 0.02, ticker_retry_delays=(), history_points=100)
    original = make_position(BTC)
    pm.positions[BTC] = original
    for i in range(60):
        client.prices[BTC] = 100.0 + (i % 5) / 1000  # no exit: the position stays open
        assert list(pm.update_positions()) == []
    assert len(original.history) == 60
    assert copier(original).history == original.history


def test_copy_shares_attribute_values_and_deepcopy_does_not() -> None:
    p = worked()
    shallow, deep = copy.copy(p), copy.deepcopy(p)
    assert shallow.params is p.params
    assert deep.params == p.params and deep.params is not p.params


def test_a_pickled_position_loads_in_a_process_without_a_manager(tmp_path: Path) -> None:
    blob = tmp_path / "position.pickle"
    blob.write_bytes(pickle.dumps(worked()))
    code = (
        "import pickle, sys\n"
        "p = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "print(type(p).__name__, p.side, p.partial_exits_taken, p.strategy, p.get_pnl(49000.0))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(blob)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out[:4] == ["Position", "short", "3", "breakout"]
    assert float(out[4]) == worked().get_pnl(49000.0)


def test_a_subclass_copies_as_itself() -> None:
    p = BotPosition(BTC, "long", 100.0, 1.0, 5, 95.0, 110.0)
    for clone in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert type(clone) is BotPosition and clone.note == "mine"
        same_position(clone, p)


def test_a_bad_pickled_state_is_a_value_error() -> None:
    p = worked()
    with pytest.raises(ValueError, match="not a pickled Position state"):
        p.__setstate__("nonsense")
    _func, _args, state = p.__reduce__()
    fields = dict(state[1])
    del fields["amount"]
    with pytest.raises(ValueError, match='bad or missing "amount"'):
        p.__setstate__((1, fields, {}))
    with pytest.raises(ValueError, match="format 99 is not supported"):
        p.__setstate__((99, state[1], {}))


def test_the_positions_view_copies_and_pickles_as_a_plain_dict() -> None:
    pm = PositionManager(FakeExchange(), 0.02)
    pm.positions[BTC] = worked()
    pm.positions[ETH] = make_position(ETH)
    shallow = copy.copy(pm.positions)
    assert type(shallow) is dict and list(shallow) == [BTC, ETH]
    assert shallow[BTC] is pm.positions[BTC]
    for detached in (copy.deepcopy(pm.positions), pickle.loads(pickle.dumps(pm.positions))):
        assert type(detached) is dict and list(detached) == [BTC, ETH]
        same_position(detached[BTC], pm.positions[BTC])


def events_of_a_busy_manager() -> list[Any]:
    client = FakeExchange([{"symbol": BTC, "contracts": 1.0, "side": "long", "entryPrice": 100}])
    with frozen_clock(datetime(2025, 1, 2, 3, 4, 5, 678901)):
        pm = PositionManager(client, 0.02, ticker_retry_delays=())
        pm.sync_existing_positions()
        assert pm.open_position(ETH, "BUY", 2.0, 5)
        pm.scale_in_position(ETH, 1.0, 100.0)
        pm.scale_out_position(ETH, 1.0)
        pm.safe_update_position_targets(ETH, new_stop_loss=90.0)
        pm.positions["SOL/USDT:USDT"] = make_position("SOL/USDT:USDT")
        del pm.positions["SOL/USDT:USDT"]
        client.drop(BTC)
        list(pm.update_positions())
        pm.close_position(ETH)
    return pm.events


def test_events_pickle_copy_and_convert_to_json_and_back() -> None:
    events = events_of_a_busy_manager()
    kinds = {e["kind"] for e in events}
    assert {"imported", "opened", "scaled_in", "partial_close", "removed", "closed"} <= kinds
    assert pickle.loads(pickle.dumps(events)) == events
    assert copy.deepcopy(events) == events
    for event in events:
        data = event_to_json(event)
        text = json.dumps(data, allow_nan=False)
        assert json.loads(text) == data
        assert event_from_json(json.loads(text)) == event
        assert data["time"] == "2025-01-02T03:04:05.678901"
        assert event["kind"] in typing.get_args(EventKind)


def test_event_to_json_carries_fields_it_does_not_know() -> None:
    event = dict(events_of_a_busy_manager()[0])
    event["order_id"] = "abc-1"
    event["fills"] = [(datetime(2025, 1, 1), 1.5)]
    event["pnl"] = float("nan")
    data = event_to_json(event)
    assert data["order_id"] == "abc-1"
    assert data["fills"] == [["2025-01-01T00:00:00", 1.5]]
    assert data["pnl"] is None
    json.dumps(data, allow_nan=False)
    with pytest.raises(TypeError, match=r"event field odd cannot be written as JSON"):
        event_to_json({**event, "odd": object()})


def test_the_configuration_reference_lists_every_kind_and_reason() -> None:
    text = (DOCS / "configuration.md").read_text()
    section = text[text.index("## Events") :]
    listed = set(re.findall(r"`([a-z_]+)`", section))
    assert set(typing.get_args(EventKind)) <= listed
    assert set(typing.get_args(EventReason)) <= listed
    assert "event_to_json" in section
