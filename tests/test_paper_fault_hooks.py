"""PaperExchange fault hooks for realistic failures: lost order answers and lagging position lists.

``lose_answer_next(method, times, error, answer_none=False)``: the venue acts (the order fills,
the close executes, the cancel is done), then the call raises (a ``TimeoutError`` by default) or
answers ``None``. ``lag_positions_next(times)``: the next position lists show the positions as
they were when it was armed.
"""

from __future__ import annotations

import pytest

from position_manager_rs.paper import ANSWER_LOSS_METHODS, EXTERNAL_EVENT_KINDS, PaperExchange

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
def paper() -> PaperExchange:
    return PaperExchange(seed=5, volatility=0.0)


def test_a_lost_market_order_answer_raises_after_the_fill(paper: PaperExchange) -> None:
    paper.lose_answer_next("create_market_order")
    with pytest.raises(TimeoutError):
        paper.create_market_order(BTC, "buy", 3, 10)
    assert paper.position(BTC)["contracts"] == 3.0  # type: ignore[index]
    lost = paper.events(["answer_lost"])
    assert len(lost) == 1 and lost[0]["details"]["method"] == "create_market_order"
    assert "TimeoutError" in lost[0]["details"]["raised"]
    # Only the next call: the one after answers normally.
    assert paper.create_market_order(BTC, "buy", 1, 10) is not None
    assert paper.position(BTC)["contracts"] == 4.0  # type: ignore[index]


def test_a_lost_answer_can_be_none_or_a_given_error(paper: PaperExchange) -> None:
    paper.lose_answer_next("create_market_order", answer_none=True)
    assert paper.create_market_order(BTC, "buy", 2, 10) is None
    assert paper.position(BTC)["contracts"] == 2.0  # type: ignore[index]
    paper.lose_answer_next("create_market_order", 2, ConnectionResetError)
    for _ in range(2):
        with pytest.raises(ConnectionResetError):
            paper.create_market_order(BTC, "sell", 1, 10, reduce_only=True, is_critical=True)
    assert paper.position(BTC) is None
    boom = OSError("read timed out")
    paper.lose_answer_next("create_market_order", error=boom)
    with pytest.raises(OSError) as caught:
        paper.create_market_order(ETH, "sell", 1, 10)
    assert caught.value is boom
    assert paper.position(ETH)["side"] == "short"  # type: ignore[index]


def test_a_lost_close_answer_after_the_close(paper: PaperExchange) -> None:
    paper.create_market_order(ETH, "buy", 5, 10)
    paper.lose_answer_next("close_position")
    with pytest.raises(TimeoutError):
        paper.close_position(ETH)
    assert paper.position(ETH) is None
    # The bot's client style: the close went through, the answer is None.
    paper.create_market_order(ETH, "buy", 5, 10)
    paper.lose_answer_next("close_position", answer_none=True)
    assert paper.close_position(ETH) is None
    assert paper.position(ETH) is None


def test_lost_limit_order_and_cancel_answers(paper: PaperExchange) -> None:
    paper.lose_answer_next("create_limit_order")
    with pytest.raises(TimeoutError):
        paper.create_limit_order(BTC, "buy", 2, 80000.0, 10, post_only=True)
    (resting,) = paper.open_orders(BTC)
    paper.lose_answer_next("cancel_order", answer_none=True)
    assert paper.cancel_order(resting["id"], BTC) is None
    assert paper.open_orders(BTC) == []


def test_fail_next_raises_before_acting_and_leaves_the_lost_answer_armed(
    paper: PaperExchange,
) -> None:
    paper.lose_answer_next("create_market_order")
    paper.fail_next("create_market_order")
    with pytest.raises(ConnectionError):
        paper.create_market_order(BTC, "buy", 1, 10)
    assert paper.position(BTC) is None
    with pytest.raises(TimeoutError):
        paper.create_market_order(BTC, "buy", 1, 10)
    assert paper.position(BTC) is not None


def test_only_acting_methods_can_lose_an_answer(paper: PaperExchange) -> None:
    assert set(ANSWER_LOSS_METHODS) == {
        "create_market_order",
        "create_limit_order",
        "cancel_order",
        "close_position",
    }
    with pytest.raises(ValueError):
        paper.lose_answer_next("get_open_positions")
    with pytest.raises(ValueError):
        paper.lose_answer_next("create_market_order", -1)


def test_a_lagging_position_list_shows_the_armed_moment(paper: PaperExchange) -> None:
    paper.create_market_order(BTC, "buy", 2, 10)
    paper.lag_positions_next(2)
    paper.create_market_order(ETH, "sell", 1, 10)  # opened after the picture
    paper.close_externally(BTC)  # closed after the picture
    for _ in range(2):
        stale = paper.get_open_positions()
        assert [p["symbol"] for p in stale] == [BTC] and stale[0]["contracts"] == 2.0
    assert [p["symbol"] for p in paper.get_open_positions()] == [ETH]
    entries = paper.events(["stale_positions"])
    assert [e["details"]["shown"] for e in entries] == [[BTC], [BTC]]
    assert entries[0]["details"]["held"] == [ETH]


def test_a_lagging_list_is_a_copy(paper: PaperExchange) -> None:
    paper.create_market_order(BTC, "buy", 2, 10)
    paper.lag_positions_next(2)
    first = paper.get_open_positions()
    first[0]["contracts"] = 99.0
    first[0]["info"]["currentQty"] = 99.0
    second = paper.get_open_positions()
    assert second[0]["contracts"] == 2.0 and second[0]["info"]["currentQty"] == 2.0


def test_empty_answers_and_failures_take_precedence_over_the_lag(paper: PaperExchange) -> None:
    paper.create_market_order(BTC, "buy", 2, 10)
    paper.lag_positions_next(1)
    paper.answer_empty_next(1)
    paper.fail_next("get_open_positions")
    with pytest.raises(ConnectionError):
        paper.get_open_positions()
    assert paper.get_open_positions() == []
    assert [p["symbol"] for p in paper.get_open_positions()] == [BTC]
    assert paper.events(["stale_positions"])  # the lagged answer was the third


def test_the_new_kinds_are_external_events() -> None:
    assert {"answer_lost", "stale_positions"} <= EXTERNAL_EVENT_KINDS


@pytest.mark.parametrize("error", ["timeout", 42, dict, TimeoutError()])
def test_lose_answer_next_checks_the_error_when_armed(paper: PaperExchange, error: object) -> None:
    if isinstance(error, BaseException):  # an instance is fine
        paper.lose_answer_next("create_market_order", error=error)
        with pytest.raises(TimeoutError):
            paper.create_market_order(BTC, "buy", 1, 10)
        return
    with pytest.raises(TypeError, match=r"\berror must be None, an exception") as info:
        paper.lose_answer_next("create_market_order", error=error)  # type: ignore[arg-type]
    assert repr(error) in str(info.value)
    assert paper.create_market_order(BTC, "buy", 1, 10) is not None  # nothing was armed
    assert paper.events(["answer_lost"]) == []
