"""The exchange-state failure modes of ``../shared/spec/failure-modes.md``, one test (or a few)
per case, named after it (``test_A1_...``). Each is written as the case's Given/When/Then and
would fail without the design rule that handles it.

Cases not here need capabilities that are out of scope (DESIGN.md) or not built: A8's alert event
and ``UNRECONCILED`` flag (only "it does not loop" is tested), B12 (the emergency exits are the
original's, kept for parity), D19 hedge-mode legs, D22's closed-with-dust flag (only "one close,
no loop" is tested), F28/F30-F32 (no exchange-side stop orders), G33/G36 (no batch tickers or
user streams); C18's persisted high-water marks belong to the persistence tests.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from helpers_clients import DEFAULT_PRICE, FakeExchange, events_of, make_manager, make_position
from reliability_helpers import DDoSProtection, NetworkError, RequestTimeout

from position_manager_rs import Position, PositionManager
from position_manager_rs.testing import frozen_clock

BTC, ETH, TON = "BTC/USDT:USDT", "ETH/USDT:USDT", "TON/USDT:USDT"
START = datetime(2026, 3, 2, 12, 0, 0)
ORDER_METHODS = ("close_position", "create_market_order", "create_limit_order", "cancel_order")


class RateLimitExceeded(Exception):
    pass


def orders(exchange: FakeExchange) -> list[tuple[str, tuple[Any, ...]]]:
    """Every order-like call the manager made."""
    return [(m, a) for m, a, _ in exchange.calls if m in ORDER_METHODS]


def kinds(pm: PositionManager, symbol: str | None = None) -> list[tuple[str, str]]:
    return [(e["kind"], e["reason"]) for e in events_of(pm, symbol)]


def tracked(exchange: FakeExchange, *symbols: str, **options: Any) -> PositionManager:
    """A manager tracking ``symbols`` (also held on the exchange), each with a bot attribute."""
    pm = make_manager(exchange, **options)
    for s in symbols:
        exchange.open(s, contracts=1.0, entry_price=DEFAULT_PRICE)
        p = make_position(s)
        p.strategy = "breakout"
        pm.positions[s] = p
    return pm


def cycle(pm: PositionManager) -> list[tuple[str, float, Position]]:
    return list(pm.update_positions())


@pytest.fixture(autouse=True)
def _logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="TradingBot")


# --------------------------------------------------------------------------- A. lying venues


def test_A1_transient_empty_list() -> None:
    """Given 2 tracked positions, when the list is [] once and then the real list, nothing is
    dropped and no order is sent (missing_confirmations=2)."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH, missing_confirmations=2)
    before = dict(pm.positions.items())
    real = exchange.get_open_positions()
    answers = iter([[], real, [], real])
    exchange.on_get_open_positions = lambda: next(answers)
    for _ in range(4):
        assert cycle(pm) == []
    assert dict(pm.positions.items()) == before
    assert all(pm.positions[s] is p for s, p in before.items())
    assert not [k for k, _ in kinds(pm) if k in ("removed", "closed")]
    assert orders(exchange) == []


def test_A1_one_transient_empty_list_with_the_default_policy_removes_nothing() -> None:
    """With the original's policy (dropped at once), an empty list that would remove every
    position is read again before it is acted on: one transient [] removes nothing."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    before = dict(pm.positions.items())
    real = exchange.get_open_positions()
    answers = iter([[], real])
    exchange.on_get_open_positions = lambda: next(answers)
    cycle(pm)
    assert dict(pm.positions.items()) == before
    assert not [k for k, _ in kinds(pm) if k == "removed"]
    assert orders(exchange) == []


def test_A1_transient_empty_lists_with_the_default_policy_restore_the_same_positions() -> None:
    """Two empty answers in a row do remove them; the very same positions come back when the
    real list does — same objects, same bot attributes — and still no order is sent."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    before = dict(pm.positions.items())
    real = exchange.get_open_positions()
    answers = iter([[], [], real])
    exchange.on_get_open_positions = lambda: next(answers)
    cycle(pm)
    assert list(pm.positions) == []
    cycle(pm)
    assert set(pm.positions) == {BTC, ETH}
    for s, p in before.items():
        assert pm.positions[s] is p and p.strategy == "breakout"
    assert sorted(kinds(pm))[-4:] == [
        ("removed", "closed_externally"),
        ("removed", "closed_externally"),
        ("restored", "reported_again"),
        ("restored", "reported_again"),
    ]
    assert orders(exchange) == []


def test_A1_removal_needs_K_absences_spanning_T_seconds() -> None:
    """Only after K consecutive successful absences spanning at least T seconds is a position
    dropped (missing_confirmations=K, missing_grace_seconds=T)."""
    exchange = FakeExchange()
    with frozen_clock(START) as clock:
        pm = tracked(exchange, BTC, missing_confirmations=3, missing_grace_seconds=60)
        exchange.drop(BTC)
        for _ in range(5):  # five absences within 40 s: K reached, T not
            cycle(pm)
            clock.advance(seconds=10)
        assert BTC in pm.positions
        clock.advance(seconds=30)  # the absences now span 70 s
        cycle(pm)
    assert BTC not in pm.positions
    assert kinds(pm, BTC)[-1][0] == "removed"
    assert orders(exchange) == []


def test_A1_a_stop_crossed_during_a_transient_empty_list_drops_nothing() -> None:
    """The close the crossed stop asks for checks the list too: the cycle's [] and the close's
    own [] would be two omissions, but a list that shows none of the tracked positions is read
    once more before anything is removed — and that read shows ETH, so ETH is closed by its
    stop (one order, after a list listed it) and nothing is dropped as closed externally."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH, missing_confirmations=2)
    exchange.set_price(ETH, 90.0)  # below ETH's stop: the cycle wants to close it
    real = exchange.get_open_positions()
    answers = iter([[], [], real, real, real])
    exchange.on_get_open_positions = lambda: next(answers)
    closed = cycle(pm)  # the transient [] (the close's own check sees it too)
    assert [s for s, _, _ in closed] == [ETH]
    assert set(pm.positions) == {BTC}
    assert not [k for k, _ in kinds(pm) if k == "removed"]
    assert exchange.calls_of("close_position") == [((ETH,), {})]


@pytest.mark.parametrize("error", [NetworkError, RequestTimeout, DDoSProtection])
def test_A2_query_raises(caplog: pytest.LogCaptureFixture, error: type[Exception]) -> None:
    """When the position query raises, the reconciliation is skipped: nothing is removed, the
    miss counters do not advance, and no close order goes out — even for a position whose stop
    the price crossed."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH, missing_confirmations=2)

    def fails() -> Any:
        raise error("exchange unavailable")

    exchange.on_get_open_positions = lambda: []
    cycle(pm)  # one real absence: 1/2
    exchange.on_get_open_positions = fails
    exchange.set_price(ETH, 90.0)  # below ETH's stop: the cycle wants to close it
    for _ in range(3):
        cycle(pm)
    assert set(pm.positions) == {BTC, ETH}, "a failed query counted as an absence"
    assert not exchange.calls_of("close_position")
    assert any(
        r.getMessage().startswith("Unable to verify positions on exchange during update")
        for r in caplog.records
    )
    exchange.on_get_open_positions = None  # the venue answers again: the run of misses ends
    exchange.set_price(ETH, DEFAULT_PRICE)
    cycle(pm)
    exchange.on_get_open_positions = lambda: []
    cycle(pm)
    assert set(pm.positions) == {BTC, ETH}, "the miss counter was not reset by a real listing"


def test_A3_a_failed_close_keeps_the_position_until_the_venue_answers() -> None:
    """A close whose request fails with a network error stays "unknown": the position stays
    tracked (no removal, no 'closed' event) until a definitive venue answer — the next list."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)

    def network_error(symbol: str) -> Any:
        raise NetworkError("connection reset by peer")

    exchange.on_close_position = network_error
    assert pm.close_position(BTC) is None
    assert BTC in pm.positions
    assert not [k for k, _ in kinds(pm) if k in ("removed", "closed")]
    cycle(pm)  # the venue still lists it: kept
    assert BTC in pm.positions
    exchange.drop(BTC)  # the venue's definitive answer: it is gone
    cycle(pm)
    assert BTC not in pm.positions
    assert kinds(pm, BTC)[-1][0] == "removed"
    assert len(exchange.calls_of("close_position")) == 1


def test_A4_an_unknown_order_status_is_not_read_as_cancelled() -> None:
    """The fill status of a limit order is unknown and its cancel fails: the order stays
    "unknown" — the manager reads the exchange's positions and tracks what it holds instead
    of assuming nothing happened and sending a second order."""
    exchange = FakeExchange()
    exchange.limit_fill = 1.0
    pm = make_manager(exchange)

    def filled_but_unknown(order_id: Any, symbol: str, **kwargs: Any) -> Any:
        exchange.on_wait_for_order_fill = None
        exchange.wait_for_order_fill(order_id, symbol, **kwargs)  # it did fill
        raise RequestTimeout("order status unavailable")

    def cancel_fails(order_id: Any, symbol: str) -> Any:
        raise NetworkError("cancel: connection reset")

    exchange.on_wait_for_order_fill = filled_but_unknown
    exchange.on_cancel_order = cancel_fails
    assert pm.open_position(BTC, "BUY", 1.0, 10, 0.05, use_limit=True) is True
    assert exchange.calls_of("create_market_order") == []
    assert pm.positions[BTC].amount == 1.0 == exchange.positions[BTC]["contracts"]


def test_A5_one_unfiltered_position_query_per_cycle() -> None:
    """One batch ``get_open_positions()`` (no symbol filter) per cycle, also when the cycle
    closes a position (the close reuses the cycle's fresh list)."""
    exchange = FakeExchange()
    symbols = [f"S{i}/USDT:USDT" for i in range(20)]
    pm = tracked(exchange, *symbols)
    exchange.set_price(symbols[3], 90.0)  # past its stop: closed in the cycle
    closed = cycle(pm)
    assert [s for s, _, _ in closed] == [symbols[3]]
    assert exchange.calls_of("get_open_positions") == [((), {})]


def test_A6_absent_vs_zero() -> None:
    """Given BTC and TON tracked, when the venue returns only BTC, TON is reconciled as closed."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, TON)
    exchange.drop(TON)
    cycle(pm)
    assert list(pm.positions) == [BTC]
    assert kinds(pm, TON)[-1] == ("removed", "closed_externally")
    assert orders(exchange) == []


def test_A6_a_zero_size_entry_counts_as_absence_too() -> None:
    """When the venue returns TON with contracts=0, that counts as a confirmation of absence."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, TON, missing_confirmations=2)
    exchange.positions[TON]["contracts"] = 0
    cycle(pm)
    assert TON in pm.positions  # 1/2
    cycle(pm)
    assert list(pm.positions) == [BTC]
    assert kinds(pm, TON)[-1][0] == "removed"


PHANTOMS = [
    {"contracts": 0},
    {"contracts": 0.0},
    {"contracts": None},
    {"side": None},
    {"contracts": None, "side": None},
]


@pytest.mark.parametrize("phantom", PHANTOMS)
def test_A7_phantom_entries_are_never_imported(phantom: dict[str, Any]) -> None:
    exchange = FakeExchange()
    exchange.open(ETH, **phantom)
    pm = make_manager(exchange)
    assert pm.sync_existing_positions() == 0
    assert pm.reconcile_positions() == 0
    assert ETH not in pm.positions
    assert orders(exchange) == []


@pytest.mark.parametrize("phantom", PHANTOMS)
def test_A7_phantom_entries_are_not_presence(phantom: dict[str, Any]) -> None:
    """A phantom entry for a tracked symbol does not keep it: it reads as absence."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    exchange.positions[BTC].update(phantom)
    cycle(pm)
    assert BTC not in pm.positions
    assert kinds(pm, BTC)[-1][0] == "removed"


def test_A8_a_persistent_discrepancy_does_not_loop() -> None:
    """An exchange-only entry that can never be imported (no price for it): every
    reconciliation makes the same bounded number of calls and returns; nothing loops.
    (The spec's alert event and UNRECONCILED flag are not built.)"""
    exchange = FakeExchange()
    exchange.open(ETH)
    exchange.positions[ETH]["entryPrice"] = None  # nor a price to import it at
    exchange.on_get_ticker = lambda symbol: None
    pm = make_manager(exchange)
    per_call = []
    for _ in range(3):
        n = len(exchange.calls)
        assert pm.reconcile_positions() == 0
        per_call.append(len(exchange.calls) - n)
    assert per_call[0] == per_call[1] == per_call[2] <= 3, per_call
    assert ETH not in pm.positions


# --------------------------------------------------------------------------- B. external closes


def test_B9_manual_close() -> None:
    """Closed by hand on the exchange: removed with reason closed_externally and its last state;
    no order of any kind, and its stop is no longer managed (no more calls for it)."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    pm.positions[BTC].stop_loss = 97.0
    exchange.drop(BTC)
    cycle(pm)
    assert list(pm.positions) == [ETH]
    (event,) = [e for e in events_of(pm, BTC) if e["kind"] == "removed"]
    assert event["reason"] == "closed_externally"
    assert event["position"]["stop_loss"] == 97.0 and event["position"]["amount"] == 1.0
    n = len(exchange.calls)
    cycle(pm)
    assert not [c for c in exchange.calls[n:] if BTC in c[1]], "BTC still managed"
    assert orders(exchange) == []


def vanish_after_a_cycle_at(
    side: str, last: float, liquidation: float | None, stop: float, take_profit: float
) -> PositionManager:
    """A position seen by one cycle at price ``last`` (its close refused, if it wanted one),
    then gone from the venue by the next one.

    A falsy close answer is not definitive; with ``outcome_confirmations=1`` the one list the
    close reads after it (still showing the position) settles it as not executed, so the vanish
    is the venue's doing. Under the default (2) the vanish settles the close as executed:
    :func:`test_B13_a_vanish_right_after_an_uncertain_close_is_that_close`."""
    exchange = FakeExchange()
    exchange.open(BTC, side=side, contracts=1.0, liquidationPrice=liquidation)
    pm = make_manager(exchange, outcome_confirmations=1)
    pm.positions[BTC] = Position(BTC, side, 100.0, 1.0, 1, stop, take_profit)
    exchange.on_get_ticker = lambda symbol: {"last": last}
    exchange.on_close_position = lambda symbol: False
    cycle(pm)
    assert BTC in pm.positions
    exchange.drop(BTC)
    cycle(pm)
    assert BTC not in pm.positions
    return pm


@pytest.mark.parametrize(
    ("side", "last", "liquidation"), [("long", 89.0, 90.0), ("short", 111.0, 110.0)]
)
def test_B10_liquidation(side: str, last: float, liquidation: float) -> None:
    """Disappeared with the last price beyond the reported liquidation price: the removal's
    reason is 'liquidation' and the liquidation price is recorded."""
    stop, tp = (80.0, 130.0) if side == "long" else (120.0, 70.0)
    pm = vanish_after_a_cycle_at(side, last, liquidation, stop, tp)
    event = events_of(pm, BTC)[-1]
    assert (event["kind"], event["reason"]) == ("removed", "liquidation")
    evidence = event["evidence"]
    assert evidence is not None and evidence["liquidation_price"] == liquidation
    assert event["time"] is not None


def test_B10_liquidation_pnl_is_not_left_null() -> None:
    """The liquidation's P/L is recorded on the removal event."""
    pm = vanish_after_a_cycle_at("long", 89.0, 90.0, 80.0, 130.0)
    assert events_of(pm, BTC)[-1]["pnl"] is not None


def test_B11_no_close_on_vanished_position() -> None:
    """A position liquidated before the manager acted: no close is attempted for it."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    exchange.drop(BTC)
    assert pm.close_position(BTC) is None  # the bot asks; the venue no longer lists it
    assert BTC not in pm.positions
    exchange.drop(ETH)
    exchange.set_price(ETH, 90.0)  # ETH's stop was crossed, but ETH is gone already
    assert cycle(pm) == []
    assert pm.positions == {}
    assert orders(exchange) == []


def test_B11_a_position_not_exist_error_reconciles_instead_of_retrying() -> None:
    """The close is rejected ('position does not exist', reduce-only): the manager does not
    retry; the next list reconciles it away."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    exchange.set_price(BTC, 90.0)

    def rejected(symbol: str) -> Any:
        exchange.drop(symbol)  # it was liquidated a moment ago
        raise Exception("binance {'code': -2022, 'msg': 'ReduceOnly Order is rejected.'}")

    exchange.on_close_position = rejected
    # The close's outcome is unknown: the list read right after it shows the position gone, so
    # the close is resolved there (its P/L at the close's price), and nothing is retried.
    [(symbol, pnl, position)] = cycle(pm)
    assert symbol == BTC and pnl == position.get_leveraged_pnl(90.0, include_fees=True)
    assert BTC not in pm.positions
    for _ in range(3):
        cycle(pm)
    assert len(exchange.calls_of("close_position")) == 1


@pytest.mark.parametrize(
    ("side", "last", "reason"),
    [
        ("long", 94.0, "stop_filled_on_exchange"),
        ("short", 106.0, "stop_filled_on_exchange"),
        ("long", 116.0, "take_profit_filled_on_exchange"),
        ("short", 84.0, "take_profit_filled_on_exchange"),
        ("long", 100.5, "closed_externally"),
    ],
)
def test_B13_stop_filled_on_the_exchange(side: str, last: float, reason: str) -> None:
    """An exchange-side stop or take profit filled: the next cycle (not a restart) removes the
    position with the reason the price tells."""
    stop, tp = (95.0, 115.0) if side == "long" else (105.0, 85.0)
    pm = vanish_after_a_cycle_at(side, last, None, stop, tp)
    assert kinds(pm, BTC)[-1] == ("removed", reason)


@pytest.mark.parametrize(("side", "last"), [("long", 94.0), ("short", 106.0)])
def test_B13_a_vanish_right_after_an_uncertain_close_is_that_close(side: str, last: float) -> None:
    """The default ``outcome_confirmations=2``: the stop's close is answered falsy (not
    definitive), and the one list read after it still shows the position: a list lagging the
    fill looks the same, so the outcome stays unknown and nothing more is sent. The next list
    shows it gone: the close went through (``closed`` with its reason), not a stop the venue
    filled."""
    stop, tp = (95.0, 115.0) if side == "long" else (105.0, 85.0)
    exchange = FakeExchange()
    exchange.open(BTC, side=side, contracts=1.0)
    pm = make_manager(exchange)
    pm.positions[BTC] = Position(BTC, side, 100.0, 1.0, 1, stop, tp)
    exchange.on_get_ticker = lambda symbol: {"last": last}
    exchange.on_close_position = lambda symbol: False
    cycle(pm)
    assert BTC in pm.positions
    assert kinds(pm, BTC)[-1] == ("outcome_unknown", "close")
    cycle(pm)
    # A second list showing it: not executed; the close is sent again, and again unknown.
    assert kinds(pm, BTC)[-1] == ("outcome_unknown", "close")
    assert len(exchange.calls_of("close_position")) == 2
    exchange.drop(BTC)
    cycle(pm)
    assert BTC not in pm.positions
    assert kinds(pm, BTC)[-1] == ("closed", "stop_loss")
    assert len(exchange.calls_of("close_position")) == 2


def test_B14_partial_external_reduce() -> None:
    """Venue size drops from 1.0 to 0.6 without an order of ours: the local size becomes 0.6 (same
    object) and a 'resized' event says so."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    position = pm.positions[BTC]
    exchange.positions[BTC]["contracts"] = 0.6
    cycle(pm)
    assert pm.positions[BTC] is position and position.amount == 0.6
    assert position.strategy == "breakout"
    assert kinds(pm, BTC)[-1][0] == "resized"
    assert orders(exchange) == []


# --------------------------------------------------------------------------- C. import


def test_C15_exchange_only_position_imported() -> None:
    """An exchange-only position is imported with the exchange's entry price (not the current
    price), a stop and take profit from the current price, and an 'imported' event."""
    exchange = FakeExchange()
    exchange.open(ETH, side="short", contracts=2.0, entry_price=95.0, leverage=3)
    exchange.set_price(ETH, 100.0)
    pm = make_manager(exchange)
    assert pm.sync_existing_positions() == 1
    p = pm.positions[ETH]
    assert (p.side, p.amount, p.entry_price, p.leverage) == ("short", 2.0, 95.0, 3)
    assert p.stop_loss == pytest.approx(105.0) and p.take_profit == pytest.approx(85.0)
    assert kinds(pm, ETH) == [("imported", "sync")]
    assert orders(exchange) == []


def test_C16_imported_positions_are_closable() -> None:
    exchange = FakeExchange()
    exchange.open(ETH, contracts=1.0)
    pm = make_manager(exchange)
    pm.reconcile_positions()
    assert pm.close_position(ETH) is not None
    assert ETH not in pm.positions and ETH not in exchange.positions
    assert exchange.calls_of("close_position") == [((ETH,), {})]


def test_C17_a_sync_never_imports_over_a_tracked_position() -> None:
    """A manual trade on the same symbol is not imported as a second position by a sync: the
    bot's own position takes the exchange's size (as an update cycle does), same object."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    mine = pm.positions[BTC]
    exchange.positions[BTC]["contracts"] = 3.0  # someone bought 2 more by hand
    assert pm.sync_existing_positions() == 0
    assert pm.positions[BTC] is mine and mine.amount == 3.0 and mine.strategy == "breakout"
    assert not [k for k, _ in kinds(pm, BTC) if k == "imported"]
    assert kinds(pm, BTC)[-1] == ("resized", "size_changed_externally")


def test_C18_restart_without_state_rebuilds_from_the_exchange() -> None:
    """A fresh manager (restart, no saved state) rebuilds the book from one position query."""
    exchange = FakeExchange()
    for s, price in [(BTC, 101.0), (ETH, 99.0)]:
        exchange.open(s, entry_price=price)
    pm = make_manager(exchange)
    assert pm.sync_existing_positions() == 2
    assert {s: p.entry_price for s, p in pm.positions.items()} == {BTC: 101.0, ETH: 99.0}
    assert len(exchange.calls_of("get_open_positions")) == 1
    assert orders(exchange) == []


# --------------------------------------------------------------------------- D. keys, units


def test_D20_one_way_netting_flip() -> None:
    """The venue flips from long 1.0 to short 0.5: the long is over (removed, with an event) and
    the short 0.5 is tracked instead — never both."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    old = pm.positions[BTC]
    exchange.open(BTC, side="short", contracts=0.5)
    cycle(pm)
    new = pm.positions[BTC]
    assert new is not old and (new.side, new.amount) == ("short", 0.5)
    assert len(pm.positions) == 1
    assert "removed" in [k for k, _ in kinds(pm, BTC)]


def test_D21_contract_size_is_carried() -> None:
    """Given contractSize=10, the imported position carries it."""
    exchange = FakeExchange()
    exchange.open(ETH, contracts=3.0, contractSize=10)
    pm = make_manager(exchange)
    pm.sync_existing_positions()
    assert pm.positions[ETH].contract_size == 10
    assert pm.positions[ETH].to_dict()["contract_size"] == 10


def test_D22_a_dust_residual_is_closed_with_one_order() -> None:
    """1.17 opened, 1.15 closed, 0.02 left below the 0.05 minimum: closing the rest is one full
    close, not a loop of rejected partial orders. (The closed-with-dust flag is not built.)"""
    exchange = FakeExchange()
    exchange.min_amount = 0.05
    pm = make_manager(exchange)
    assert pm.open_position(BTC, "BUY", 1.17, 10)
    assert pm.scale_out_position(BTC, 1.15) is not None
    assert pm.positions[BTC].amount == pytest.approx(0.02)
    assert pm.scale_out_position(BTC, 0.02) is not None
    assert BTC not in pm.positions and BTC not in exchange.positions
    assert len(exchange.calls_of("close_position")) == 1


# --------------------------------------------------------------------------- E. restart, races


def test_E23_idempotent_restart() -> None:
    """Restarting twice with the same exchange state: no orders, and no duplicate history."""
    exchange = FakeExchange()
    exchange.open(BTC)
    exchange.open(ETH)
    for _ in range(2):
        pm = make_manager(exchange)
        assert pm.sync_existing_positions() == 2
        assert pm.sync_existing_positions() == 0
        assert pm.reconcile_positions() == 0
        assert kinds(pm) == [("imported", "sync"), ("imported", "sync")]
    assert orders(exchange) == []


def test_E24_a_close_filled_between_fetch_and_apply_is_neither_removed_twice_nor_reimported() -> (
    None
):
    """The cycle's position list was fetched; before it is applied, the bot's close fills. The
    stale list (which still shows the position) neither removes it a second time nor brings it
    back."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    closes: list[Any] = []

    def stale_then_close() -> Any:
        stale = [dict(p) for p in exchange.positions.values()]
        exchange.on_get_open_positions = None
        closes.append(pm.close_position(BTC))  # fills now
        return stale

    exchange.on_get_open_positions = stale_then_close
    cycle(pm)
    assert closes and closes[0] is not None
    assert BTC not in pm.positions
    assert kinds(pm, BTC)[-1] == ("closed", "manual")
    assert [k for k, _ in kinds(pm, BTC)].count("closed") == 1
    assert not [k for k, _ in kinds(pm, BTC) if k in ("removed", "restored", "imported")]
    assert len(exchange.calls_of("close_position")) == 1


def test_E24_a_sync_whose_list_predates_a_close_does_not_reimport() -> None:
    """A sync whose list was fetched before a close filled does not import the just-closed
    position again."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)

    def stale_then_close() -> Any:
        stale = [dict(p) for p in exchange.positions.values()]
        exchange.on_get_open_positions = None
        pm.close_position(BTC)  # e.g. the update loop's close on another thread fills now
        return stale

    exchange.on_get_open_positions = stale_then_close
    pm.sync_existing_positions()
    assert BTC not in exchange.positions
    assert BTC not in pm.positions, "a position closed a moment ago was imported again"


def test_E24_a_position_opened_during_the_fetch_survives_the_snapshot() -> None:
    exchange = FakeExchange()
    pm = make_manager(exchange)

    def stale_then_open() -> Any:
        stale = [dict(p) for p in exchange.positions.values()]  # does not list BTC
        exchange.on_get_open_positions = None
        assert pm.open_position(BTC, "BUY", 1.0, 10)
        return stale

    exchange.on_get_open_positions = stale_then_open
    cycle(pm)
    assert BTC in pm.positions
    assert kinds(pm, BTC) == [("opened", "open")]


def test_E25_a_long_lived_position_reconciles_from_the_snapshot() -> None:
    """A position held for 40 days reconciles like any other (no fill-history lookback), and a
    restart imports it from one query."""
    exchange = FakeExchange()
    with frozen_clock(START - timedelta(days=40)) as clock:
        pm = tracked(exchange, BTC)
        position = pm.positions[BTC]
        clock.set(START)
        assert pm.reconcile_positions() == 0
        assert pm.positions[BTC] is position
        pm2 = make_manager(exchange)
        assert pm2.sync_existing_positions() == 1
        exchange.drop(BTC)
        assert pm.reconcile_positions() == 1
    assert BTC not in pm.positions


def test_E26_a_thousand_positions_reconcile_with_one_batched_query() -> None:
    exchange = FakeExchange()
    symbols = [f"S{i:04d}/USDT:USDT" for i in range(1000)]
    pm = make_manager(exchange)
    for s in symbols:
        exchange.open(s)
    assert pm.sync_existing_positions() == 1000
    exchange.drop(symbols[500])
    n = len(exchange.calls_of("get_open_positions"))
    assert pm.reconcile_positions() == 1
    assert len(exchange.calls_of("get_open_positions")) == n + 1
    assert len(pm.positions) == 999 and symbols[500] not in pm.positions


# --------------------------------------------------------------------------- F, G


def test_F27_nothing_is_sent_for_a_closed_position() -> None:
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)
    assert pm.close_position(BTC) is not None
    n = len(exchange.calls)
    cycle(pm)
    assert pm.modify_position_targets(BTC, 90.0, 120.0) is False
    assert pm.safe_update_position_targets(BTC, 90.0, 120.0) is False
    assert pm.scale_out_position(BTC, 0.5) is None
    assert not [c for c in exchange.calls[n:] if BTC in c[1]]


@pytest.mark.parametrize("side", ["long", "short"])
def test_F29_the_trailing_stop_only_ratchets(side: str) -> None:
    """Over a price walk with pullbacks, the stop only ever moves in the position's favour;
    raising the trailing percentage (a config change) does not loosen an already trailed stop."""
    exchange = FakeExchange()
    exchange.open(BTC, side=side)
    pm = make_manager(exchange)
    p = make_position(BTC, side=side, leverage=1)
    p.take_profit = None  # no profit exit: the walk goes on
    pm.positions[BTC] = p
    direction = 1 if side == "long" else -1
    walk = [100, 101, 102, 101.7, 103, 102.8, 104, 103.7, 105, 104.8, 106, 105.9]
    stops = [p.stop_loss]
    for i, step in enumerate(walk):
        if i == 6:
            pm.trailing_stop_percentage = 0.05
        exchange.set_price(BTC, 100 + direction * (step - 100))
        cycle(pm)
        assert pm.positions.get(BTC) is p, f"closed at step {i}"
        stops.append(p.stop_loss)
    moves = [b - a for a, b in zip(stops, stops[1:])]
    assert all(direction * m >= 0 for m in moves), stops
    assert sum(direction * m > 0 for m in moves) >= 3, f"the stop hardly trailed: {stops}"


@pytest.mark.parametrize("error", [DDoSProtection, RateLimitExceeded])
def test_G34_rate_limit_errors_are_not_evidence_of_absence(error: type[Exception]) -> None:
    exchange = FakeExchange()
    pm = tracked(exchange, BTC, ETH)

    def limited() -> Any:
        raise error("429 Too Many Requests")

    exchange.on_get_open_positions = limited
    for _ in range(5):
        cycle(pm)
        pm.reconcile_positions()
        pm.close_position(ETH)
    assert set(pm.positions) == {BTC, ETH}
    assert orders(exchange) == []


def test_G35_one_client_instance() -> None:
    """The manager uses the bot's own client object for every call (one rate limiter)."""
    exchange = FakeExchange()
    pm = tracked(exchange, BTC)
    assert pm.client is exchange
    cycle(pm)
    pm.sync_existing_positions()
    pm.close_position(BTC)
    assert {m for m, _, _ in exchange.calls} >= {
        "get_open_positions",
        "get_ticker",
        "get_ohlcv",
        "close_position",
    }
