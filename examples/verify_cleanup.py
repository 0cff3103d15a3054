"""Verifies the seed fix: positions closed outside the bot disappear from the manager.

Runs the original verification scenarios against a scripted client and prints one line per
scenario. Exit code 0 when all pass, 1 otherwise.

    python examples/verify_cleanup.py
"""

from __future__ import annotations

import sys
from typing import Any, Callable
from unittest.mock import Mock

from position_manager_rs import Position, PositionManager

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


def long(symbol: str, entry: float) -> Position:
    return Position(symbol, "long", entry, 0.1, 10, entry * 0.98, entry * 1.04)


def client(listed: list[str] | Exception, price: float | None = None) -> Mock:
    c = Mock()
    if isinstance(listed, Exception):
        c.get_open_positions.side_effect = listed
    else:
        c.get_open_positions.return_value = [{"symbol": s} for s in listed]
    c.get_ticker.return_value = {"last": price} if price else None
    c.get_ohlcv.return_value = []
    c.close_position.return_value = True
    return c


def all_closed_externally() -> bool:
    """The exchange lists nothing: the tracked position is dropped."""
    pm = PositionManager(client([]), 0.02)
    pm.positions[BTC] = long(BTC, 50000)
    list(pm.update_positions())
    return len(pm.positions) == 0


def only_btc_remains() -> bool:
    """3 tracked, the exchange lists BTC only: ETH and SOL are dropped, BTC kept (price calm)."""
    pm = PositionManager(client([BTC], price=50100), 0.02)
    for s, e in ((BTC, 50000), (ETH, 3000), (SOL, 100)):
        pm.positions[s] = long(s, e)
    list(pm.update_positions())
    return list(pm.positions) == [BTC]


def all_listed_all_kept() -> bool:
    """Every tracked position is on the exchange: all are kept."""
    pm = PositionManager(client([BTC, ETH], price=50100), 0.02)
    pm.positions[BTC] = long(BTC, 50000)
    pm.positions[ETH] = long(ETH, 50000)
    list(pm.update_positions())
    return sorted(pm.positions) == sorted([BTC, ETH])


def api_error_keeps_everything() -> bool:
    """The position list cannot be fetched: nothing is dropped."""
    pm = PositionManager(client(RuntimeError("exchange down"), price=50100), 0.02)
    pm.positions[BTC] = long(BTC, 50000)
    list(pm.update_positions())
    return BTC in pm.positions


def close_refuses_what_exchange_lacks() -> bool:
    """close_position() on a position the exchange no longer lists: untracked, no order sent."""
    c = client([])
    pm = PositionManager(c, 0.02)
    pm.positions[ETH] = long(ETH, 3000)
    result = pm.close_position(ETH)
    return result is None and ETH not in pm.positions and not c.close_position.called


def restored_after_transient_empty_list() -> bool:
    """A transient empty list drops a position; the same position reported again comes back
    with its state and identity."""
    c = client([])
    pm = PositionManager(c, 0.02)
    p = long(BTC, 50000)
    p.strategy = "breakout"
    pm.positions[BTC] = p
    list(pm.update_positions())
    c.get_open_positions.return_value = [
        {"symbol": BTC, "side": "long", "contracts": 0.1, "entryPrice": 50000}
    ]
    c.get_ticker.return_value = {"last": 50100}
    list(pm.update_positions())
    return pm.positions.get(BTC) is p and p.strategy == "breakout"


SCENARIOS: list[tuple[str, Callable[[], Any]]] = [
    ("closed externally: removed", all_closed_externally),
    ("only BTC still open: only BTC remains", only_btc_remains),
    ("all still open: all kept", all_listed_all_kept),
    ("API error: nothing removed", api_error_keeps_everything),
    ("close of a position the exchange lacks: no order", close_refuses_what_exchange_lacks),
    ("transient empty list: same position restored", restored_after_transient_empty_list),
]


def main() -> int:
    failures = 0
    for name, scenario in SCENARIOS:
        try:
            ok = bool(scenario())
        except Exception as e:  # a crash is a failure of the scenario, reported as such
            ok = False
            name = f"{name} (raised {type(e).__name__}: {e})"
        print(f"{'✅ PASS' if ok else '❌ FAIL'}  {name}")
        failures += not ok
    print(f"\n{len(SCENARIOS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
