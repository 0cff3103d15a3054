"""Views for people: records, pandas frames, HTML tables for Jupyter and plots.

The native ``PositionManager`` and ``Position`` delegate ``to_records``, ``to_pandas``,
``_repr_html_`` and ``plot`` here: presentation is Python's job, the book stays in Rust. pandas and
matplotlib are optional; the functions that need them say so when they are missing.
"""

from __future__ import annotations

import html
import math
import numbers
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _core

if TYPE_CHECKING:
    from ._core import Position, PositionManager

__all__ = [
    "manager_frame",
    "manager_html",
    "manager_records",
    "plot_position",
    "position_html",
    "position_record",
]

COLUMNS = (
    "symbol",
    "side",
    "entry_price",
    "amount",
    "leverage",
    "stop_loss",
    "take_profit",
    "last_price",
    "pnl",
    "age",
)


def _now() -> datetime:
    # The process-wide clock (frozen in tests and simulations), not the wall clock.
    return _core._clock_now()


def _leveraged_pnl(position: Position, price: float) -> tuple[float | None, str | None]:
    """The leveraged P/L at ``price`` and, when it is unavailable, why.

    A subclass's ``get_leveraged_pnl`` may raise or answer something that is not a number:
    then the P/L is ``None`` and the reason says what happened, so one such position does not
    take the whole table down. ``KeyboardInterrupt`` and ``SystemExit`` still propagate.
    """
    try:
        pnl = position.get_leveraged_pnl(price)
    except Exception as e:
        try:
            text = str(e)
        except Exception:
            text = "<unprintable>"
        if len(text) > 200:
            text = text[:200] + "..."
        return None, f"get_leveraged_pnl raised {type(e).__name__}: {text}"
    if isinstance(pnl, bool) or not isinstance(pnl, numbers.Real):
        return None, f"get_leveraged_pnl returned {type(pnl).__name__}, not a number"
    return float(pnl), None


def _record(
    position: Position, symbol: str | None, now: datetime
) -> tuple[dict[str, Any], str | None]:
    # The record and, when its P/L is unavailable although the position was priced, why.
    last = position.history[-1] if position.history else None
    last_price = None if last is None else last[1]
    pnl, problem = (None, None) if last_price is None else _leveraged_pnl(position, last_price)
    record = {
        "symbol": position.symbol if symbol is None else symbol,
        "side": position.side,
        "entry_price": position.entry_price,
        "amount": position.amount,
        "leverage": position.leverage,
        "stop_loss": position.stop_loss,
        "take_profit": position.take_profit,
        "last_price": last_price,
        "pnl": pnl,
        "age": now - position.entry_time,
        "updated": None if last is None else last[0],
    }
    return record, problem


def position_record(
    position: Position, symbol: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """One position as a flat dict: the columns of the manager's table plus ``updated``.

    ``last_price`` and ``updated`` come from the position's history (the last update cycle that
    priced it); ``pnl`` is the leveraged P/L fraction at that price, before fees, as a float:
    ``None`` when the position was never priced, and ``None`` too when it is unavailable — the
    position's own ``get_leveraged_pnl`` (a subclass's override) raised an ``Exception`` or
    answered something that is not a real number (the HTML views show such a cell as
    "unavailable", with the reason). ``age`` is a ``timedelta`` since ``entry_time``, by
    ``now`` (default: the process-wide clock; ``manager_records`` passes the manager's own).
    """
    return _record(position, symbol, _now() if now is None else now)[0]


def manager_records(manager: PositionManager) -> list[dict[str, Any]]:
    """Every tracked position as a record (see ``position_record``), in book order; ages by
    the manager's own clock (``manager.clock``, e.g. paper time) when it has one. A position
    whose P/L is unavailable has ``pnl`` ``None``; the others are unaffected."""
    return [r for r, _ in _manager_records(manager)]


def _manager_records(manager: PositionManager) -> list[tuple[dict[str, Any], str | None]]:
    clock = manager.clock
    now = _now() if clock is None else clock.now()
    return [_record(p, s, now) for s, p in manager.get_all_positions().items()]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_pandas() needs pandas: pip install pandas (or use to_records())"
        ) from e
    return pandas


def manager_frame(manager: PositionManager) -> Any:
    """The records as a ``pandas.DataFrame`` indexed by symbol."""
    pandas = _pandas()
    frame = pandas.DataFrame(manager_records(manager), columns=[*COLUMNS, "updated"])
    return frame.set_index("symbol")


# -- HTML --------------------------------------------------------------------------------------

_STYLE = (
    "<style>"
    ".pmrs table{border-collapse:collapse;font-family:ui-monospace,monospace;font-size:12px}"
    ".pmrs th,.pmrs td{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}"
    ".pmrs th{background:#f4f4f4}.pmrs td.l,.pmrs th.l{text-align:left}"
    ".pmrs .up{color:#1a7f37}.pmrs .down{color:#cf222e}.pmrs .muted{color:#888}"
    ".pmrs caption{text-align:left;font-weight:bold;padding:4px 0}"
    "</style>"
)


def _plain(x: float) -> str:
    """``x`` to 12 significant digits (a float's arithmetic residue, 0.30000000000000004, left
    out), without an exponent: 12345678, 0.00001234."""
    if not math.isfinite(x):
        return str(x)
    text = format(Decimal(f"{x:.12g}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _price(x: float | None) -> str:
    """The log lines' price format, unless it loses the figure's fourth significant digit (a
    coin priced below a cent: 0.00001234 and 0.00001172 would both read 0.000012); then the
    price in full."""
    if x is None:
        return "—"
    text = _core.format_price(x)
    if math.isfinite(x) and x != 0 and abs(float(text) - x) > abs(x) * 5e-4:
        text = _plain(x)
    return html.escape(text)


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"


def _pnl_cell(pnl: float | None, problem: str | None = None) -> str:
    if problem is not None:
        return f'<td class="muted" title="{html.escape(problem)}">unavailable</td>'
    if pnl is None:
        return '<td class="muted">—</td>'
    css = "up" if pnl > 0 else "down" if pnl < 0 else ""
    return f'<td class="{css}">{pnl:+.2%}</td>'


def _leverage(x: float) -> str:
    return f"{x:g}x"


def manager_html(manager: PositionManager) -> str:
    """The manager as an HTML table (what Jupyter shows for ``manager``)."""
    records = _manager_records(manager)
    head = "".join(
        f'<th class="{"l" if c in ("symbol", "side") else ""}">{c.replace("_", " ")}</th>'
        for c in COLUMNS
    )
    rows = []
    for r, problem in records:
        rows.append(
            "<tr>"
            f'<td class="l">{html.escape(r["symbol"])}</td>'
            f'<td class="l">{html.escape(r["side"])}</td>'
            f"<td>{_price(r['entry_price'])}</td>"
            f"<td>{_plain(r['amount'])}</td>"
            f"<td>{_leverage(r['leverage'])}</td>"
            f"<td>{_price(r['stop_loss'])}</td>"
            f"<td>{_price(r['take_profit'])}</td>"
            f"<td>{_price(r['last_price'])}</td>"
            f"{_pnl_cell(r['pnl'], problem)}"
            f"<td>{_age(r['age'])}</td>"
            "</tr>"
        )
    if not rows:
        rows.append(f'<tr><td class="l muted" colspan="{len(COLUMNS)}">no open positions</td></tr>')
    # Counted, not converted: converting the history costs ~65 ms at its default 10 000 events.
    caption = (
        f"PositionManager — {len(records)} open position(s), "
        f"{manager.event_count} event(s) in history"
    )
    return (
        f'<div class="pmrs">{_STYLE}<table><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def position_html(position: Position) -> str:
    """One position as a small HTML table (what Jupyter shows for a ``Position``); its age by
    the clock of the manager holding it, as the manager's table shows it."""
    r, problem = _record(position, None, _now())
    fields = [
        ("side", html.escape(r["side"])),
        ("entry price", _price(r["entry_price"])),
        ("amount", _plain(r["amount"])),
        ("leverage", _leverage(r["leverage"])),
        ("stop loss", _price(r["stop_loss"])),
        ("take profit", _price(r["take_profit"])),
        ("last price", _price(r["last_price"])),
        ("age", _age(r["age"])),
        ("history points", str(len(position.history))),
    ]
    body = "".join(f'<tr><th class="l">{k}</th><td>{v}</td></tr>' for k, v in fields)
    pnl = r["pnl"]
    pnl_row = f'<tr><th class="l">P/L</th>{_pnl_cell(pnl, problem)}</tr>'
    title = html.escape(f"Position {r['symbol']}")
    return (
        f'<div class="pmrs">{_STYLE}<table><caption>{title}</caption>'
        f"<tbody>{body}{pnl_row}</tbody></table></div>"
    )


# -- plot --------------------------------------------------------------------------------------


def plot_position(position: Position, ax: Any = None) -> Any:
    """Draws the position's history: price, stop loss and take profit over time, and the entry.

    Uses ``ax`` when given (any matplotlib-like Axes), else a new matplotlib figure. Returns
    the Axes.
    """
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("plot() needs matplotlib: pip install matplotlib") from e
        _, ax = plt.subplots(figsize=(8, 3.5))
    points = position.history
    times = [p[0] for p in points]
    ax.plot(times, [p[1] for p in points], label="price", color="#1f6feb")
    ax.step(times, [p[2] for p in points], where="post", label="stop loss", color="#cf222e")
    targets = [p[3] for p in points]
    if any(t is not None for t in targets):
        ax.step(
            times,
            [float("nan") if t is None else t for t in targets],
            where="post",
            label="take profit",
            color="#1a7f37",
        )
    ax.axhline(position.entry_price, linestyle="--", linewidth=0.8, color="#888", label="entry")
    ax.set_title(f"{position.symbol} {position.side} x{position.leverage:g}")
    ax.legend(loc="best")
    return ax
