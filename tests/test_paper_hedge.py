"""``PaperExchange(position_mode='hedge')``: a long and a short leg per symbol, held apart.

The paper venue speaks the position-legs contract of ``CcxtClient`` (``position_legs = True``):
entries carry ``side`` and ``hedged``, ``close_position(symbol, side=...)`` closes one leg, the
order methods take ``position_side``. In hedge mode plain orders only ever open or add to the
leg of their side, a reduce-only order must name its leg (refused otherwise, as hedge-mode venues
refuse an order without its position side), and liquidations, manual closes and partial
reductions act on one leg. One-way mode keeps its behaviour; the same contract checks run
against ``CcxtClient`` on the fake Binance venue in hedge mode, so the two stay alike. A model
check (hypothesis, derandomized; ``PMRS_LONG=1`` for long random runs) replays random order
sequences against two independent one-way books.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from venue_dialects import DIALECTS
from venue_sim import running

from position_manager_rs import PositionManager
from position_manager_rs.ccxt_client import CcxtClient
from position_manager_rs.paper import PaperExchange

pytestmark = pytest.mark.timeout(60)

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
LONG_RUN = os.environ.get("PMRS_LONG") == "1"


@pytest.fixture
def hedge() -> PaperExchange:
    return PaperExchange(seed=3, position_mode="hedge", volatility=0.0)


def legs(paper: PaperExchange) -> list[tuple[str, str, float, bool]]:
    return sorted(
        (p["symbol"], p["side"], p["contracts"], p["hedged"]) for p in paper.get_open_positions()
    )


def rejections(paper: PaperExchange) -> list[str]:
    return [e["details"]["reason"] for e in paper.events(["order_rejected"])]


# --------------------------------------------------------------------------- set-up


def test_the_mode_is_checked_and_one_way_is_the_default() -> None:
    assert PaperExchange().position_mode == "oneway"
    assert PaperExchange(position_mode="hedge").hedge is True
    with pytest.raises(ValueError, match="position_mode"):
        PaperExchange(position_mode="dual")
    assert PaperExchange.position_legs is True  # a class attribute, as the manager reads it


# --------------------------------------------------------------------------- legs


def test_buys_and_sells_open_two_legs_that_never_net(hedge: PaperExchange) -> None:
    assert hedge.create_market_order(BTC, "buy", 5, 10) is not None
    assert hedge.create_market_order(BTC, "sell", 3, 5) is not None
    assert hedge.create_market_order(BTC, "buy", 2, 10) is not None  # adds to the long leg
    assert legs(hedge) == [(BTC, "long", 7.0, True), (BTC, "short", 3.0, True)]
    long, short = sorted(hedge.get_open_positions(), key=lambda p: p["side"])
    assert long["id"] != short["id"]
    assert long["info"]["positionSide"] == "LONG" and short["info"]["positionSide"] == "SHORT"
    assert (long["leverage"], short["leverage"]) == (10.0, 5.0)


def test_a_reduce_only_order_must_name_its_leg(hedge: PaperExchange) -> None:
    hedge.create_market_order(BTC, "buy", 5, 10)
    hedge.create_market_order(BTC, "sell", 3, 10)
    assert hedge.create_market_order(BTC, "sell", 2, 10, reduce_only=True) is None
    assert "must name its leg" in rejections(hedge)[-1]
    assert hedge.create_limit_order(BTC, "sell", 2, 1.0, 10, reduce_only=True) is None
    assert legs(hedge) == [(BTC, "long", 5.0, True), (BTC, "short", 3.0, True)]

    order = hedge.create_market_order(
        BTC, "sell", 2, 10, reduce_only=True, is_critical=True, position_side="long"
    )
    assert order is not None and order["reduceOnly"] is True
    assert order["info"]["positionSide"] == "LONG"
    assert legs(hedge) == [(BTC, "long", 3.0, True), (BTC, "short", 3.0, True)]
    assert hedge.calls_of("create_market_order")[-1][1]["position_side"] == "long"


def test_a_reduction_is_capped_at_its_leg_and_never_flips(hedge: PaperExchange) -> None:
    hedge.create_market_order(BTC, "buy", 2, 10)
    hedge.create_market_order(BTC, "sell", 4, 10)
    order = hedge.create_market_order(BTC, "buy", 9, 10, reduce_only=True, position_side="short")
    assert order is not None and order["filled"] == 4.0
    assert legs(hedge) == [(BTC, "long", 2.0, True)]
    assert (
        hedge.create_market_order(BTC, "buy", 1, 10, reduce_only=True, position_side="short")
        is None
    )


def test_a_position_side_that_does_not_fit_the_order_raises_and_places_nothing(
    hedge: PaperExchange,
) -> None:
    hedge.create_market_order(BTC, "buy", 2, 10)
    calls = len(hedge.calls)
    with pytest.raises(ValueError, match="reduces the long leg"):
        hedge.create_market_order(BTC, "sell", 1, 10, reduce_only=True, position_side="short")
    with pytest.raises(ValueError, match="opens the long leg"):
        hedge.create_limit_order(BTC, "buy", 1, 1.0, 10, position_side="short")
    with pytest.raises(ValueError, match="position_side"):
        hedge.create_market_order(BTC, "buy", 1, 10, position_side="both")
    assert len(hedge.calls) == calls
    assert legs(hedge) == [(BTC, "long", 2.0, True)]


def test_close_position_takes_exactly_the_named_leg(hedge: PaperExchange) -> None:
    hedge.create_market_order(BTC, "buy", 5, 10)
    hedge.create_market_order(BTC, "sell", 3, 10)
    fills = len(hedge.events(["fill"]))
    assert hedge.close_position(BTC) is False  # two legs: name one; nothing is sent
    assert len(hedge.events(["fill"])) == fills
    assert hedge.close_position(BTC, side="long") is True
    assert legs(hedge) == [(BTC, "short", 3.0, True)]
    assert hedge.close_position(BTC, side="long") is False
    assert hedge.close_position(BTC, client_order_id="cl1", side="short") is True
    assert legs(hedge) == []
    assert hedge.calls_of("close_position")[-1] == (
        (BTC,),
        {"client_order_id": "cl1", "side": "short"},
    )
    found = hedge.get_order_by_client_id("cl1", BTC)
    assert found is not None and found["side"] == "buy" and found["reduceOnly"] is True
    with pytest.raises(ValueError, match="side"):
        hedge.close_position(BTC, side="both")


def test_close_position_without_a_side_closes_the_only_leg(hedge: PaperExchange) -> None:
    hedge.create_market_order(ETH, "sell", 4, 10)
    assert hedge.close_position(ETH) is True
    assert legs(hedge) == []


def test_each_leg_realizes_its_own_pnl(hedge: PaperExchange) -> None:
    hedge.set_price(BTC, 90000.0)
    hedge.create_market_order(BTC, "buy", 10, 10)
    hedge.create_market_order(BTC, "sell", 10, 10)
    hedge.set_price(BTC, 91000.0)
    size = hedge.contract_size(BTC)
    hedge.close_position(BTC, side="long")
    assert hedge.realized_pnl == pytest.approx(1000.0 * 10 * size)
    hedge.close_position(BTC, side="short")
    assert hedge.realized_pnl == pytest.approx(0.0, abs=1e-9)


def test_a_liquidation_takes_one_leg(hedge: PaperExchange) -> None:
    hedge.set_price(ETH, 3000.0)
    hedge.create_market_order(ETH, "buy", 5, 20)  # long liquidated near 2865
    hedge.create_market_order(ETH, "sell", 5, 2)
    hedge.set_price(ETH, 2800.0)
    (liquidation,) = hedge.events(["liquidation"])
    assert liquidation["details"]["side"] == "long"
    assert legs(hedge) == [(ETH, "short", 5.0, True)]


def test_manual_closes_and_reductions_name_their_leg(hedge: PaperExchange) -> None:
    hedge.create_market_order(BTC, "buy", 6, 10)
    hedge.create_market_order(BTC, "sell", 4, 10)
    with pytest.raises(ValueError, match="name the side"):
        hedge.close_externally(BTC)
    with pytest.raises(ValueError, match="name the side"):
        hedge.reduce_externally(BTC, 1)
    with pytest.raises(ValueError, match="name the side"):
        hedge.position(BTC)
    assert hedge.reduce_externally(BTC, 2, side="long") is True
    assert hedge.close_externally(BTC, side="short") is True
    assert hedge.close_externally(BTC, side="short") is False
    assert legs(hedge) == [(BTC, "long", 4.0, True)]
    external = hedge.events(["manual_close", "partial_reduction"])
    assert [(e["kind"], e["details"]["side"]) for e in external] == [
        ("partial_reduction", "long"),
        ("manual_close", "short"),
    ]
    position = hedge.position(BTC)
    assert position is not None and position["side"] == "long"


def test_a_closed_leg_cancels_its_own_reduce_only_orders_only(hedge: PaperExchange) -> None:
    hedge.set_price(BTC, 90000.0)
    hedge.create_market_order(BTC, "buy", 5, 10)
    hedge.create_market_order(BTC, "sell", 5, 10)
    take_long = hedge.create_limit_order(
        BTC, "sell", 5, 99000.0, 10, reduce_only=True, position_side="long"
    )
    take_short = hedge.create_limit_order(
        BTC, "buy", 5, 80000.0, 10, reduce_only=True, position_side="short"
    )
    assert take_long is not None and take_short is not None
    assert hedge.close_externally(BTC, side="long") is True
    assert [o["id"] for o in hedge.open_orders(BTC)] == [take_short["id"]]
    hedge.set_price(BTC, 79000.0)  # the short's take-profit fills on the short leg
    assert legs(hedge) == []
    filled = hedge.get_order_by_client_id(str(take_short["clientOrderId"]), BTC)
    assert filled is not None and filled["status"] == "closed" and filled["filled"] == 5.0


def test_random_venue_events_act_on_legs_and_stay_deterministic() -> None:
    def run() -> list[tuple[str, str, Any]]:
        paper = PaperExchange(
            seed=11,
            position_mode="hedge",
            event_rates={"manual_close": 0.05, "partial_reduction": 0.1},
        )
        paper.create_market_order(BTC, "buy", 8, 5)
        paper.create_market_order(BTC, "sell", 6, 5)
        paper.create_market_order(ETH, "sell", 5, 5)
        paper.advance(120)
        return [
            (e["kind"], e["symbol"], e["details"].get("side"))
            for e in paper.events(["manual_close", "partial_reduction"])
        ]

    first = run()
    assert first == run()
    assert {side for _kind, _symbol, side in first} == {"long", "short"}


def test_lists_in_history_name_legs(hedge: PaperExchange) -> None:
    hedge.create_market_order(BTC, "buy", 1, 10)
    hedge.create_market_order(BTC, "sell", 1, 10)
    hedge.answer_empty_next()
    assert hedge.get_open_positions() == []
    (empty,) = hedge.events(["transient_empty"])
    assert empty["details"]["hidden"] == [f"{BTC}@long", f"{BTC}@short"]


# --------------------------------------------------------------------------- one-way


def test_one_way_entries_say_hedged_false_and_take_position_side() -> None:
    paper = PaperExchange(seed=1)
    paper.create_market_order(BTC, "buy", 3, 10, position_side="long")
    assert legs(paper) == [(BTC, "long", 3.0, False)]
    (entry,) = paper.get_open_positions()
    assert entry["id"] == f"{BTC}-position" and "positionSide" not in entry["info"]
    assert paper.close_position(BTC, side="short") is False
    paper.create_market_order(BTC, "sell", 5, 10)  # one-way: nets and flips
    assert legs(paper) == [(BTC, "short", 2.0, False)]
    order = paper.create_market_order(BTC, "buy", 1, 10, reduce_only=True, position_side="short")
    assert order is not None and legs(paper) == [(BTC, "short", 1.0, False)]
    with pytest.raises(ValueError, match="reduces the short leg"):
        paper.create_market_order(BTC, "buy", 1, 10, reduce_only=True, position_side="long")
    assert paper.close_position(BTC, side="short") is True


# --------------------------------------------------------------------------- like CcxtClient


def _paper_client() -> Iterator[tuple[Any, Any]]:
    paper = PaperExchange(
        seed=2, position_mode="hedge", volatility=0.0, min_amount=0.001, amount_step=0.001
    )
    yield paper, lambda side: paper.position(BTC, side)


def _ccxt_client() -> Iterator[tuple[Any, Any]]:
    with running(DIALECTS["binanceusdm"](), hedge=True) as (venue, exchange):
        client = CcxtClient(exchange, sleep=lambda s: None)
        yield (
            client,
            lambda side: (
                {"contracts": venue.ledger.size(BTC, side)}
                if venue.ledger.size(BTC, side)
                else None
            ),
        )


@pytest.mark.parametrize("make", [_paper_client, _ccxt_client], ids=["paper", "ccxt"])
def test_the_leg_contract_is_the_same_on_paper_and_on_ccxt(make: Any) -> None:
    for client, leg in make():
        assert client.position_legs is True
        assert client.create_market_order(BTC, "buy", 0.005, 5) is not None
        assert client.create_market_order(BTC, "sell", 0.003, 5, position_side="short")
        entries = sorted(
            (p["side"], p["contracts"], p["hedged"]) for p in client.get_open_positions()
        )
        assert entries == [
            ("long", pytest.approx(0.005), True),
            ("short", pytest.approx(0.003), True),
        ]
        assert client.close_position(BTC) is False
        order = client.create_market_order(
            BTC, "buy", 0.001, 5, reduce_only=True, is_critical=True, position_side="short"
        )
        assert order is not None
        assert leg("short")["contracts"] == pytest.approx(0.002)
        assert leg("long")["contracts"] == pytest.approx(0.005)
        with pytest.raises(ValueError):
            client.create_market_order(BTC, "buy", 0.001, 5, reduce_only=True, position_side="long")
        assert client.close_position(BTC, side="long") is True
        assert leg("long") is None and leg("short")["contracts"] == pytest.approx(0.002)
        assert client.close_position(BTC, side="long") is False
        assert client.close_position(BTC, client_order_id="pmleg1", side="short") is True
        assert leg("short") is None


# --------------------------------------------------------------------------- model


MODEL = settings(
    max_examples=400 if LONG_RUN else 40,
    derandomize=not LONG_RUN,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

operations = st.lists(
    st.tuples(
        st.sampled_from(["open", "reduce", "close", "manual", "trim"]),
        st.sampled_from([BTC, ETH]),
        st.sampled_from(["long", "short"]),
        st.integers(min_value=1, max_value=6),
    ),
    max_size=30,
)


@MODEL
@given(operations)
def test_hedge_legs_behave_as_two_independent_books(ops: list[tuple[str, str, str, int]]) -> None:
    paper = PaperExchange(seed=5, position_mode="hedge", volatility=0.0)
    model: dict[tuple[str, str], float] = {}
    for kind, symbol, side, amount in ops:
        held = model.get((symbol, side), 0.0)
        if kind == "open":
            order_side = "buy" if side == "long" else "sell"
            assert paper.create_market_order(symbol, order_side, amount, 5) is not None
            model[(symbol, side)] = held + amount
        elif kind == "reduce":
            order_side = "sell" if side == "long" else "buy"
            order = paper.create_market_order(
                symbol, order_side, amount, 5, reduce_only=True, position_side=side
            )
            assert (order is None) == (held == 0)
            model[(symbol, side)] = max(0.0, held - amount)
        elif kind == "close":
            assert paper.close_position(symbol, side=side) is (held > 0)
            model[(symbol, side)] = 0.0
        elif kind == "manual":
            assert paper.close_externally(symbol, side=side) is (held > 0)
            model[(symbol, side)] = 0.0
        else:
            assert paper.reduce_externally(symbol, amount, side=side) is (held > 0)
            model[(symbol, side)] = max(0.0, held - amount)
        expected = sorted((s, leg, size, True) for (s, leg), size in model.items() if size > 0)
        assert legs(paper) == expected


# --------------------------------------------------------------------------- with the manager


def test_manager_hedge_mode_on_the_paper_venue() -> None:
    paper = PaperExchange(seed=4, position_mode="hedge", volatility=0.0)
    paper.create_market_order(BTC, "buy", 5, 10)
    paper.create_market_order(BTC, "sell", 3, 10)
    manager = PositionManager(paper, position_mode="hedge", clock=paper.clock)
    assert manager.sync_existing_positions() == 2
    assert sorted(manager.positions) == [f"{BTC}@long", f"{BTC}@short"]
    paper.close_externally(BTC, side="short")
    list(manager.update_positions())
    assert list(manager.positions) == [f"{BTC}@long"]
    assert isinstance(manager.close_position(f"{BTC}@long"), float)
    assert paper.positions() == []
    assert paper.calls_of("close_position")[-1][1].get("side") == "long"


def test_a_lagging_list_names_legs_as_held_does() -> None:
    paper = PaperExchange(seed=1, volatility=0.0, position_mode="hedge")
    paper.create_market_order(BTC, "buy", 2, 10)
    paper.create_market_order(BTC, "sell", 2, 10)
    paper.lag_positions_next()
    assert paper.close_position(BTC, side="short")
    assert len(paper.get_open_positions()) == 2  # the lagging list
    (stale,) = paper.events(["stale_positions"])
    assert stale["details"] == {"shown": [f"{BTC}@long", f"{BTC}@short"], "held": [f"{BTC}@long"]}


def test_close_position_closes_a_leg_of_any_size() -> None:
    paper = PaperExchange(seed=1, volatility=0.0, position_mode="hedge", min_amount=5)
    paper.create_market_order(BTC, "buy", 5, 10)
    paper.create_market_order(BTC, "sell", 5, 10)
    paper.reduce_externally(BTC, 4, side="long")
    assert paper.close_position(BTC, side="long") is True
    assert legs(paper) == [(BTC, "short", 5.0, True)]
