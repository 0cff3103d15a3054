"""Every key that enters the book fits the manager's `position_mode`, and what a manager held
comes back after a restart as it was.

A hedge-mode key (`SYMBOL@long`) in a one-way book, or a plain symbol in a hedge-mode book, never
matches what the position lists show: the very position is imported a second time beside it, and
an exit closes it twice (found 2026-12-06 by an audit: a state file or journal written in the
other mode, and `positions[symbol] = position` in hedge mode). Attribute assignments are not
range-checked (as in the original), so a running manager can hold a NaN stop; the journal wrote
it but could not read it back, and the position was lost at the restart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import pytest
from helpers_clients import FakeExchange

from position_manager_rs import Position, PositionManager

S = "BTC/USDT:USDT"
Mode = Literal["oneway", "hedge"]


def other_mode(mode: Mode) -> Mode:
    return "oneway" if mode == "hedge" else "hedge"


def venue(side: str = "long") -> FakeExchange:
    ex = FakeExchange(
        [{"symbol": S, "side": side, "contracts": 1.0, "entryPrice": 100.0, "leverage": 10}]
    )
    ex.prices[S] = 100.0
    return ex


def closes(ex: FakeExchange) -> list[tuple[Any, ...]]:
    return [c[1] for c in ex.calls if c[0] == "close_position"]


def a_cycle_below_the_stop(pm: PositionManager, ex: FakeExchange) -> list[str]:
    ex.prices[S] = 90.0
    return [symbol for symbol, _, _ in pm.update_positions()]


# --------------------------------------------------------------------------- state files


@pytest.mark.parametrize("saved_in", ["hedge", "oneway"])
def test_a_state_file_of_the_other_mode_is_refused_whole(tmp_path: Path, saved_in: Mode) -> None:
    ex = venue()
    writer = PositionManager(ex, position_mode=saved_in)
    assert writer.sync_existing_positions() == 1
    path = tmp_path / "state.json"
    writer.save_state(path)
    other = other_mode(saved_in)
    reader = PositionManager(ex, position_mode=other)
    with pytest.raises(ValueError, match="was not loaded") as info:
        reader.load_state(path)
    message = str(info.value)
    key = f"{S}@long" if saved_in == "hedge" else S
    assert f'"{key}"' in message and f"position_mode='{saved_in}'" in message, message
    assert str(path) in message
    assert len(reader.positions) == 0 and reader.events == []
    # The same file in its own mode: one position, one close.
    again = PositionManager(ex, position_mode=saved_in)
    assert again.load_state(path) == 1
    assert again.reconcile_positions() == 0
    assert a_cycle_below_the_stop(again, ex) == [key]
    assert closes(ex) == [(S,)]


# --------------------------------------------------------------------------- journals


@pytest.mark.parametrize("written_in", ["hedge", "oneway"])
def test_a_journal_of_the_other_mode_is_refused_before_anything_is_restored(
    tmp_path: Path, written_in: Mode
) -> None:
    ex = venue()
    journal = str(tmp_path / "j.db")
    writer = PositionManager(ex, position_mode=written_in, journal=journal)
    assert writer.sync_existing_positions() == 1
    del writer  # stopped
    other = other_mode(written_in)
    with pytest.raises(ValueError, match="the journal was not taken back") as info:
        PositionManager(ex, position_mode=other, journal=journal)
    assert f"position_mode='{written_in}'" in str(info.value)
    # Nothing was taken or changed: the right mode restores the position, and it closes once.
    again = PositionManager(ex, position_mode=written_in, journal=journal)
    assert len(again.positions) == 1
    assert again.reconcile_positions() == 0
    assert len(a_cycle_below_the_stop(again, ex)) == 1
    assert closes(ex) == [(S,)]


def test_a_journaled_position_holding_odd_assigned_values_comes_back(tmp_path: Path) -> None:
    ex = venue()
    journal = str(tmp_path / "j.db")
    pm = PositionManager(ex, journal=journal)
    assert pm.sync_existing_positions() == 1
    p = pm.positions[S]
    p.stop_loss = math.nan  # an indicator still warming up
    p.take_profit = -0.0021  # an ATR target below zero on a cheap coin
    p.highest_price = math.inf
    p.strategy = "mean_reversion"
    assert pm.journal_position(S)
    del pm  # stopped
    again = PositionManager(ex, journal=journal)
    assert list(again.positions) == [S]
    back = again.positions[S]
    assert math.isnan(back.stop_loss) and back.take_profit == -0.0021
    assert back.highest_price == math.inf and back.strategy == "mean_reversion"
    # The list shows the very position: nothing is imported over it.
    assert again.reconcile_positions() == 0
    assert [e["kind"] for e in again.events if e["kind"] == "imported"] == ["imported"]


# --------------------------------------------------------------------------- assignments


def test_hedge_mode_stores_a_plain_symbol_under_the_leg_of_its_side() -> None:
    ex = venue()
    pm = PositionManager(ex, position_mode="hedge")
    pm.positions[S] = Position(S, "long", 100.0, 1.0, 10, 95.0)
    assert list(pm.positions) == [f"{S}@long"]
    assert [(e["kind"], e["symbol"]) for e in pm.events] == [("added", f"{S}@long")]
    # The list shows that very position: not imported a second time, and closed once.
    assert pm.sync_existing_positions() == 0
    assert list(pm.positions) == [f"{S}@long"]
    assert a_cycle_below_the_stop(pm, ex) == [f"{S}@long"]
    assert closes(ex) == [(S,)]


def test_hedge_mode_update_setdefault_and_whole_assignment_key_by_leg() -> None:
    pm = PositionManager(venue(), position_mode="hedge")
    short = Position(S, "short", 100.0, 1.0, 10, 105.0)
    pm.positions.update({S: short})
    assert list(pm.positions) == [f"{S}@short"] and pm.positions[f"{S}@short"] is short
    long = Position(S, "long", 100.0, 1.0, 10, 95.0)
    assert pm.positions.setdefault(f"{S}@long", long) is long
    pm.positions = {"ETH/USDT:USDT": Position("ETH/USDT:USDT", "long", 10.0, 1.0, 10, 9.0)}
    assert list(pm.positions) == ["ETH/USDT:USDT@long"]
    # A plain symbol deletes its one tracked leg.
    del pm.positions["ETH/USDT:USDT"]
    assert len(pm.positions) == 0


def test_a_key_of_the_other_leg_or_mode_is_refused_and_nothing_changes() -> None:
    hedge = PositionManager(venue(), position_mode="hedge")
    long = Position(S, "long", 100.0, 1.0, 10, 95.0)
    with pytest.raises(ValueError, match=r"names the short leg, but the position is a long"):
        hedge.positions[f"{S}@short"] = long
    # A whole assignment or update checks every key before it changes anything.
    hedge.positions[S] = long
    bad = {"ETH/USDT:USDT": Position("ETH/USDT:USDT", "long", 10.0, 1.0, 10, 9.0)}
    bad[f"{S}@short"] = Position(S, "long", 100.0, 1.0, 10, 95.0)
    with pytest.raises(ValueError, match="names the short leg"):
        hedge.positions = bad
    with pytest.raises(ValueError, match="names the short leg"):
        hedge.positions.update(bad)
    assert list(hedge.positions) == [f"{S}@long"] and hedge.positions[f"{S}@long"] is long
    oneway = PositionManager(venue())
    with pytest.raises(ValueError, match="is a hedge-mode key, but this manager is in one-way"):
        oneway.positions[f"{S}@long"] = Position(S, "long", 100.0, 1.0, 10, 95.0)
    with pytest.raises(ValueError, match="is a hedge-mode key"):
        oneway.positions.setdefault(f"{S}@long", Position(S, "long", 100.0, 1.0, 10, 95.0))
    assert len(oneway.positions) == 0 and oneway.events == []


def test_a_one_way_manager_opens_no_hedge_mode_key(caplog: pytest.LogCaptureFixture) -> None:
    ex = venue()
    ex.positions.clear()
    pm = PositionManager(ex)
    assert pm.open_position(f"{S}@long", "BUY", 1.0, 10) is False
    assert f"Invalid symbol: {S}@long is a hedge-mode key" in caplog.text
    hedge = PositionManager(ex, position_mode="hedge")
    assert hedge.open_position(f"{S}@short", "BUY", 1.0, 10) is False
    assert f"Invalid symbol: {S}@short names the short leg, the signal opens a long" in caplog.text
    assert [c for c in ex.calls if c[0] == "create_market_order"] == []
    assert len(pm.positions) == 0 and len(hedge.positions) == 0


# --------------------------------------------------------------------------- the dict protocol


def test_update_and_whole_assignment_read_an_object_with_keys_as_dict_update_does() -> None:
    class KeysOnly:
        def __init__(self, items: dict[str, Position]) -> None:
            self._items = items

        def keys(self) -> list[str]:
            return list(self._items)

        def __getitem__(self, key: str) -> Position:
            return self._items[key]

    p = Position(S, "long", 100.0, 1.0, 10, 95.0)
    expected: dict[str, Position] = {}
    expected.update(KeysOnly({S: p}))  # what dict.update does with it
    pm = PositionManager(venue())
    pm.positions.update(KeysOnly({S: p}))
    assert dict(pm.positions) == expected
    pm.positions = KeysOnly({S: p})
    assert dict(pm.positions) == expected


def test_pop_takes_at_most_one_default_as_dict_pop() -> None:
    pm = PositionManager(venue())
    with pytest.raises(TypeError, match="pop expected at most 2 arguments, got 4"):
        pm.positions.pop("X", 1, 2, 3)
    assert pm.positions.pop("X", 1) == 1


# --------------------------------------------------------------------------- hedge legs


class _Relay:
    """A hedge-mode paper venue whose position lists can be rewritten."""

    position_legs = True

    def __init__(self, paper: Any) -> None:
        self.paper = paper
        self.rewrite: Any = None

    def get_open_positions(self) -> list[dict[str, Any]]:
        listed = self.paper.get_open_positions()
        return self.rewrite(listed) if self.rewrite else listed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.paper, name)


def _hedge_venue() -> Any:
    from position_manager_rs import PaperExchange

    return PaperExchange(seed=1, position_mode="hedge", volatility=0.0)


def _both_legs() -> tuple[Any, PositionManager]:
    """A hedge-mode paper venue and manager holding a long of 10 and a short of 6."""
    paper = _hedge_venue()
    pm = PositionManager(paper, 0.02, position_mode="hedge", clock=paper.clock)
    assert pm.open_position(S, "BUY", 10, 5, 0.03)
    assert pm.open_position(S, "SELL", 6, 4, 0.03)
    return paper, pm


def test_an_entry_without_a_side_is_no_evidence_against_a_tracked_short_leg() -> None:
    # Taken as a long (the original's reading), the entry made the short leg absent: the short
    # was removed as closed outside, and a close of it sent nothing (found by an audit).
    paper = _hedge_venue()
    paper.create_market_order(S, "sell", 10, 5)
    relay = _Relay(paper)
    pm = PositionManager(relay, 0.02, position_mode="hedge", clock=paper.clock)
    assert pm.sync_existing_positions() == 1
    relay.rewrite = lambda listed: [{k: v for k, v in e.items() if k != "side"} for e in listed]
    assert pm.reconcile_positions() == 0
    assert list(pm.positions) == [f"{S}@short"]
    assert pm.close_position(f"{S}@short") is not None
    assert paper.positions() == []
    assert [e["kind"] for e in pm.events] == ["imported", "closed"]


def test_a_side_assigned_against_its_leg_is_put_back_before_any_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # position.side set to the other side made a close of the long reduce the short, and the
    # real long was untracked (found by an audit): a leg's side is its key's.
    paper, pm = _both_legs()
    long = pm.positions[f"{S}@long"]
    long.side = "short"
    assert pm.close_position(f"{S}@long") is not None
    assert [(p["side"], p["contracts"]) for p in paper.positions()] == [("short", 6.0)]
    assert long.side == "long" and list(pm.positions) == [f"{S}@short"]
    assert any("is the long leg; it stays a long" in m for m in caplog.messages)
    short = pm.positions[f"{S}@short"]
    short.side = "long"
    assert list(pm.update_positions()) == []  # the cycle puts it back too
    assert short.side == "short"
    assert pm.scale_out_position(f"{S}@short", 2) is not None
    assert [(p["side"], p["contracts"]) for p in paper.positions()] == [("short", 4.0)]


def test_get_position_of_a_plain_symbol_with_both_legs_warns_as_the_other_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, pm = _both_legs()
    caplog.clear()
    assert pm.get_position(S) is None
    assert f"Position {S} has two legs; name one: {S}@long or {S}@short" in caplog.messages


def test_a_one_way_manager_on_a_hedge_account_judges_its_position_by_its_own_leg() -> None:
    # With a symbol listed with both legs, the tracked position's own listing was ignored: a
    # close the bot's client answered True without sending was never found unconfirmed (the
    # very position stayed live and unmanaged), and a reduction by hand was never seen (found
    # by an audit, 2026-12-06).
    paper = _hedge_venue()

    class Lying(_Relay):
        lie = False
        position_legs = False  # the bot's own client's call shapes

        def close_position(self, symbol: str, **kwargs: Any) -> bool:
            if self.lie:
                self.lie = False
                return True  # answered True, nothing sent
            return bool(self.paper.close_position(symbol, **kwargs))

    client = Lying(paper)
    pm = PositionManager(client, 0.02, clock=paper.clock, ticker_retry_delays=())
    assert pm.open_position(S, "BUY", 10, 5, 0.05)
    paper.create_market_order(S, "sell", 6, 5)  # a short leg opened by hand beside it
    assert list(pm.update_positions()) == []
    paper.reduce_externally(S, 4, side="long")
    assert list(pm.update_positions()) == []
    assert pm.positions[S].amount == 6.0  # the reduction is seen
    client.lie = True
    assert pm.close_position(S) is not None
    assert list(pm.update_positions()) == []
    assert [(k, p.side, p.amount) for k, p in pm.positions.items()] == [(S, "long", 6.0)]
    assert [e["kind"] for e in pm.events][-1] == "close_unconfirmed"
