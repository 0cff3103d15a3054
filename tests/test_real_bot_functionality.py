"""Port of ``test_bot_trade_execution_flow`` from the bot's ``test_real_bot_functionality.py``.

The original opens BTC-USDT through its ``KuCoinClient`` over a patched ccxt exchange whose
``fetch_positions`` always answers ``[]``, then expects ``close_position`` to return a P/L. Against
the original it fails: the close sees an exchange without the position, treats it as closed
externally and returns ``None``. The intent is ported with a client whose exchange really holds
what was ordered; the original's setting is pinned in a second test.
"""

from __future__ import annotations

from helpers_clients import FakeExchange, make_manager

SYMBOL = "BTC-USDT"


def test_bot_trade_execution_flow() -> None:
    exchange = FakeExchange()
    exchange.set_price(SYMBOL, 50000.0)
    manager = make_manager(exchange)

    assert manager.open_position(SYMBOL, "BUY", 0.1, 10, 0.05) is True
    assert manager.has_position(SYMBOL)
    position = manager.positions.get(SYMBOL)
    assert position is not None
    assert (position.side, position.amount, position.entry_price) == ("long", 0.1, 50000.0)
    assert exchange.positions[SYMBOL]["contracts"] == 0.1

    exchange.set_price(SYMBOL, 50500.0)
    pnl = manager.close_position(SYMBOL)
    assert isinstance(pnl, float)
    assert pnl == position.get_leveraged_pnl(50500.0, include_fees=True)
    assert not manager.has_position(SYMBOL)
    assert SYMBOL not in exchange.positions


def test_bot_trade_execution_flow_when_the_exchange_lists_nothing() -> None:
    """The original's setting: the exchange never lists the position. The close sends nothing
    and returns ``None``. The original untracked it at once as closed externally; a fill of the
    manager's own that no list has shown yet is untracked only when ``outcome_confirmations``
    lists (2) omit it, since a list can lag the fill — so the second close untracks it."""
    exchange = FakeExchange()
    exchange.set_price(SYMBOL, 50000.0)
    exchange.on_get_open_positions = list
    manager = make_manager(exchange)

    assert manager.open_position(SYMBOL, "BUY", 0.1, 10, 0.05) is True
    assert manager.close_position(SYMBOL) is None
    assert manager.has_position(SYMBOL), "one list's absence after the fill"
    assert [e["kind"] for e in manager.events] == ["opened"]
    assert manager.close_position(SYMBOL) is None
    assert not manager.has_position(SYMBOL)
    assert exchange.calls_of("close_position") == []
    assert [(e["kind"], e["reason"]) for e in manager.events] == [
        ("opened", "open"),
        ("removed", "closed_externally"),
    ]
