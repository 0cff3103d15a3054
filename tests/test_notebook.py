"""Executes ``examples/notebook.ipynb`` cell by cell, as Jupyter would, and checks what it shows.

No Jupyter installation is needed: code cells run in one namespace, and the value of a cell's last
expression is "displayed" the way IPython does it (its ``_repr_html_`` when it has one).
"""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook.ipynb"


def run_notebook(path: Path) -> list[tuple[str, Any]]:
    """Runs every code cell; returns each cell's source with what it displays (HTML text, or the
    value; ``None`` when it displays nothing)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    shown: list[tuple[str, Any]] = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        tree = ast.parse(source)
        last = tree.body[-1] if tree.body else None
        quiet = source.rstrip().endswith(";")
        if isinstance(last, ast.Expr) and not quiet:
            exec(compile(ast.Module(tree.body[:-1], []), str(path), "exec"), namespace)
            value = eval(compile(ast.Expression(last.value), str(path), "eval"), namespace)
            html = getattr(value, "_repr_html_", None)
            shown.append((source, html() if callable(html) else value))
        else:
            exec(compile(tree, str(path), "exec"), namespace)
            shown.append((source, None))
    return shown


def test_the_notebook_executes_and_shows_the_views() -> None:
    pytest.importorskip("pandas")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    cells = run_notebook(NOTEBOOK)
    shown = [value for _, value in cells]
    tables = [s for s in shown if isinstance(s, str) and "PositionManager —" in s]
    assert len(tables) == 3
    assert "no open positions" in tables[0]
    assert "BTC/USDT:USDT" in tables[1]
    records = next(value for source, value in cells if source.strip() == "pm.to_records()")
    assert [r["symbol"] for r in records] == [
        s for s in ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT") if s in tables[2]
    ]
    assert all({"symbol", "last_price", "pnl", "age"} <= set(r) for r in records)
    html_frames = [s for s in shown if isinstance(s, str) and "<table" in s and "dataframe" in s]
    assert len(html_frames) == 3  # to_pandas(), the events frame, the journal's closed positions
    assert "closed_externally" in html_frames[1]
    assert "closed_externally" in html_frames[2] and "removed" in html_frames[2]
    assert any(
        isinstance(s, str) and s.startswith('<div class="pmrs">') and "Position " in s
        for s in shown
    )


# -- the manager's HTML caption ---------------------------------------------------------------

NO_CLIENT: Any = object()  # the caption tests never call the exchange
_CAPTION = re.compile(r"<caption>PositionManager — (\d+) open position\(s\), (\d+) event\(s\)")


def _caption_counts(manager: Any) -> tuple[int, int]:
    match = _CAPTION.search(manager._repr_html_())
    assert match, "no caption"
    return int(match.group(1)), int(match.group(2))


def _churn(manager: Any, times: int) -> None:
    """Two events (added, untracked) per time, then one position left open (one more event)."""
    from position_manager_rs import Position

    position = Position("BTC/USDT:USDT", "long", 100.0, 1.0, 10, 90.0)
    for _ in range(times):
        manager.positions["BTC/USDT:USDT"] = position
        del manager.positions["BTC/USDT:USDT"]
    manager.positions["BTC/USDT:USDT"] = position


@pytest.mark.parametrize(
    ("history", "times", "kept"),
    [(10, 0, 1), (10, 3, 7), (10, 4, 9), (10, 5, 10), (10, 40, 10), (1, 3, 1), (0, 3, 0)],
)
def test_the_html_caption_counts_the_kept_events_exactly(
    history: int, times: int, kept: int
) -> None:
    # The count shown is len(manager.events): the events kept, the older ones dropped (any
    # faster way of counting them must show the same number).
    from position_manager_rs import PositionManager

    logging.disable(logging.CRITICAL)
    try:
        manager = PositionManager(NO_CLIENT, event_history=history)
        assert _caption_counts(manager) == (0, 0)
        _churn(manager, times)
    finally:
        logging.disable(logging.NOTSET)
    assert len(manager.events) == kept
    assert _caption_counts(manager) == (1, kept)


def test_the_html_caption_does_not_convert_the_event_history() -> None:
    # It converted the whole history to count it: ~65 ms per display at 10 000 events.
    from position_manager_rs import PositionManager

    converted: list[int] = []

    class Observed(PositionManager):  # counts the events each history read converts
        @property
        def events(self) -> Any:
            events = super().events
            converted.append(len(events))
            return events

        def events_since(self, seq: int) -> Any:
            events = super().events_since(seq)
            converted.append(len(events))
            return events

    logging.disable(logging.CRITICAL)
    try:
        manager = Observed(NO_CLIENT, event_history=1000)
        _churn(manager, 500)  # 1001 events recorded, the newest 1000 kept
    finally:
        logging.disable(logging.NOTSET)
    converted.clear()
    assert _caption_counts(manager) == (1, 1000)
    assert sum(converted) <= 1, converted  # at most the newest event, not the history


# -- one position's P/L that cannot be had ------------------------------------------------------

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (RuntimeError("model offline"), "get_leveraged_pnl raised RuntimeError: model offline"),
        ("n/a", "get_leveraged_pnl returned str, not a number"),
        (None, "get_leveraged_pnl returned NoneType, not a number"),
    ],
)
def test_a_position_whose_pnl_fails_does_not_hide_the_others(answer: Any, why: str) -> None:
    # A subclass's get_leveraged_pnl that raised (or answered a str) made the manager's
    # _repr_html_ (and to_records() when it raised) fail for the whole table (found by an
    # audit): that cell is now "unavailable", with the reason, and its record's pnl None.
    from helpers_clients import FakeExchange, make_manager

    from position_manager_rs import Position

    class Odd(Position):
        answer: Any = None
        broken = False

        def get_leveraged_pnl(self, current_price: float, include_fees: object = False) -> float:
            if not Odd.broken:
                return super().get_leveraged_pnl(current_price, include_fees)
            if isinstance(Odd.answer, BaseException):
                raise Odd.answer
            return Odd.answer

    exchange = FakeExchange()
    exchange.open(BTC, contracts=1.0)
    exchange.open(ETH, contracts=1.0)
    exchange.prices[ETH] = 100.3  # +3 % leveraged: no exit rule fires
    manager = make_manager(exchange)
    odd = Odd(BTC, "long", 100.0, 1.0, 10, 95.0, 115.0)
    manager.positions[BTC] = odd
    manager.positions[ETH] = Position(ETH, "long", 100.0, 1.0, 10, 95.0, 115.0)
    logging.disable(logging.CRITICAL)
    try:
        list(manager.update_positions())
    finally:
        logging.disable(logging.NOTSET)
    Odd.answer, Odd.broken = answer, True

    table = manager._repr_html_()
    unavailable = f'<td class="muted" title="{why}">unavailable</td>'
    assert table.count(unavailable) == 1, table
    assert '<td class="up">+3.00%</td>' in table  # ETH's row is whole
    assert unavailable in odd._repr_html_()
    records = {r["symbol"]: r for r in manager.to_records()}
    assert records[BTC]["pnl"] is None and records[BTC]["last_price"] == 100.0
    assert records[ETH]["pnl"] == pytest.approx(0.03)
    # An interruption is not a failure to display: it goes through.
    Odd.answer = KeyboardInterrupt()
    for view in (manager._repr_html_, manager.to_records, odd._repr_html_):
        with pytest.raises(KeyboardInterrupt):
            view()
