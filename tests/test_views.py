"""Views for people: ``to_records``, ``to_pandas``, the HTML Jupyter shows, position history and
``plot``."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from typing import Any

import pytest
from helpers_clients import FakeExchange, make_manager, make_position

from position_manager_rs import PositionManager
from position_manager_rs.testing import frozen_clock

START = datetime(2026, 1, 5, 12, 0, 0)
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def _manager_after_cycles(
    prices: list[float], **options: Any
) -> tuple[PositionManager, FakeExchange]:
    exchange = FakeExchange()
    exchange.open(BTC)
    exchange.open(ETH, side="short")
    pm = make_manager(exchange, **options)
    pm.positions[BTC] = make_position(BTC)
    pm.positions[ETH] = make_position(ETH, side="short")
    for price in prices:
        exchange.set_price(BTC, price)
        exchange.set_price(ETH, price)
        list(pm.update_positions())
    return pm, exchange


def test_each_cycle_adds_a_history_point() -> None:
    with frozen_clock(START) as clock:
        pm, exchange = _manager_after_cycles([])
        assert pm.client is exchange
        for price in (100.0, 100.1, 100.2):
            exchange.set_price(BTC, price)
            list(pm.update_positions())
            clock.advance(seconds=60)
        history = pm.positions[BTC].history
    assert [p[1] for p in history] == [100.0, 100.1, 100.2]
    assert [p[0] for p in history] == [START + timedelta(minutes=i) for i in range(3)]
    p = pm.positions[BTC]
    assert history[-1][2:] == (p.stop_loss, p.take_profit)  # the targets after the update


def test_history_is_bounded() -> None:
    prices = [100.0 + (i % 10) / 100 for i in range(505)]
    pm, _ = _manager_after_cycles(prices)
    history = pm.positions[BTC].history
    assert len(history) == 32 == pm.config.history_points  # the default: the last 32 updates
    assert [p[1] for p in history] == prices[-32:]
    pm, _ = _manager_after_cycles(prices, history_points=500)  # opting in to more
    history = pm.positions[BTC].history
    assert len(history) == 500
    assert history[0][1] == 100.05


def test_each_position_keeps_the_managers_history_points() -> None:
    pm, exchange = _manager_after_cycles([100.0 + i / 100 for i in range(40)], history_points=1)
    assert [len(pm.positions[s].history) for s in (BTC, ETH)] == [1, 1]
    assert pm.to_records()[0]["last_price"] == 100.39  # the last point is always kept
    # A position assigned later, with the history it had, is held to the same bound.
    other = make_position("X")
    other_pm, _ = _manager_after_cycles([100.0 + i / 100 for i in range(40)])
    moved = other_pm.positions[BTC]
    assert len(moved.history) == 32
    pm.positions["X"] = moved
    assert len(moved.history) == 1 and moved.history[0][1] == 100.39
    pm.positions["Y"] = other
    exchange.open("Y")
    list(pm.update_positions())
    assert len(other.history) == 1


def test_records() -> None:
    with frozen_clock(START) as clock:
        pm, _ = _manager_after_cycles([100.2])
        clock.advance(seconds=2 * 3600)
        records = pm.to_records()
    assert [r["symbol"] for r in records] == [BTC, ETH]
    btc = records[0]
    assert btc["side"] == "long" and btc["entry_price"] == 100.0 and btc["leverage"] == 10
    assert btc["last_price"] == 100.2
    assert btc["pnl"] == pytest.approx(0.02)
    assert btc["age"] == timedelta(hours=2)
    assert btc["updated"] == START
    assert records[1]["pnl"] == pytest.approx(-0.02)
    # A position no cycle has priced yet.
    pm.positions["NEW"] = make_position("NEW")
    new = pm.to_records()[-1]
    assert (new["last_price"], new["pnl"], new["updated"]) == (None, None, None)


def test_manager_html() -> None:
    pm, _ = _manager_after_cycles([100.2])
    pm.positions["<b>X</b>"] = make_position("<b>X</b>")
    page = pm._repr_html_()
    assert "PositionManager — 3 open position(s)" in page
    assert BTC in page and ETH in page
    assert "&lt;b&gt;X&lt;/b&gt;" in page and "<b>X</b>" not in page
    assert '<td class="up">+2.00%</td>' in page
    assert '<td class="down">-2.00%</td>' in page
    assert "100.20" in page

    empty = make_manager(FakeExchange())._repr_html_()
    assert "no open positions" in empty


def test_position_html() -> None:
    pm, _ = _manager_after_cycles([99.8])
    page = pm.positions[BTC]._repr_html_()
    assert f"Position {BTC}" in page
    assert '<td class="down">-2.00%</td>' in page
    assert "<td>1</td>" in page  # history points


def test_html_shows_meme_coin_sizes_and_prices_in_full() -> None:
    # Twelve million contracts at a hundred-thousandth of a dollar: the table showed the amount
    # as 1.23457e+07 and the entry and stop both as 0.000012 (the log lines' price format).
    pm = make_manager(FakeExchange())
    pepe = "PEPE/USDT:USDT"
    pm.positions[pepe] = make_position(
        pepe, entry_price=0.00001234, amount=12345678.0, stop_loss=0.00001172, take_profit=0.0000142
    )
    cells = set(re.findall(r"<td[^>]*>([^<]*)</td>", pm._repr_html_()))
    assert {"12345678", "0.00001234", "0.00001172", "0.0000142"} <= cells
    card = set(re.findall(r"<td[^>]*>([^<]*)</td>", pm.positions[pepe]._repr_html_()))
    assert {"12345678", "0.00001234", "0.00001172"} <= card
    # Ordinary prices keep the log lines' format; an amount's float residue is left out.
    pm.positions[BTC] = make_position(BTC, entry_price=50000.0, amount=0.1 + 0.2)
    cells = set(re.findall(r"<td[^>]*>([^<]*)</td>", pm._repr_html_()))
    assert {"50000.00", "0.3"} <= cells


def test_to_pandas() -> None:
    pd = pytest.importorskip("pandas")
    pm, _ = _manager_after_cycles([100.2])
    frame = pm.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [BTC, ETH]
    assert frame.loc[BTC, "last_price"] == 100.2
    assert list(frame.columns)[:3] == ["side", "entry_price", "amount"]


def test_to_pandas_without_pandas_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    pm, _ = _manager_after_cycles([100.2])
    with pytest.raises(ImportError, match="pip install pandas"):
        pm.to_pandas()


class RecordingAxes:
    """Stands in for a matplotlib Axes and records what was drawn."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def draw(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return draw


def test_plot_draws_price_stop_target_and_entry() -> None:
    pm, _ = _manager_after_cycles([100.0, 100.1, 100.2])
    position = pm.positions[BTC]
    ax = RecordingAxes()
    assert position.plot(ax) is ax
    drawn = {(name, kwargs.get("label")) for name, _, kwargs in ax.calls}
    assert {
        ("plot", "price"),
        ("step", "stop loss"),
        ("step", "take profit"),
        ("axhline", "entry"),
    } <= drawn
    (_, price_args, _) = next(c for c in ax.calls if c[0] == "plot")
    assert list(price_args[1]) == [100.0, 100.1, 100.2]


def test_plot_with_matplotlib() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    pm, _ = _manager_after_cycles([100.0, 100.1, 100.2])
    ax = pm.positions[BTC].plot()
    assert len(ax.get_lines()) >= 4
    assert ax.get_title() == f"{BTC} long x10"
