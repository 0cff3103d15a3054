"""A one-symbol-per-position futures venue kept in a JSON file, so it outlives the process that
trades on it (tests/order_crash_child.py is killed mid-order; the test reads on after it).

Positions are ccxt-shaped dicts (``symbol``, ``side``, ``contracts``, ``entryPrice``,
``leverage``); limit orders rest until cancelled or the price crosses them (``cross``). Every
change rewrites the file atomically (``os.replace``); each order is counted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class FileVenue:
    def __init__(self, path: str | Path, price: float = 100.0) -> None:
        self.path = Path(path)
        self.price = price
        if not self.path.exists():
            self._save({"positions": {}, "orders": 0, "limits": {}})

    def _load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)

    def positions(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self._load()["positions"].values()]

    @property
    def orders(self) -> int:
        """Orders the venue took (fills and closes)."""
        return int(self._load()["orders"])

    def fill(self, symbol: str, side: str, amount: float, leverage: float) -> None:
        """A market order: opens or adds to ``symbol`` (a sell opens a short)."""
        data = self._load()
        data["orders"] += 1
        held = data["positions"].get(symbol)
        wanted = "long" if side == "buy" else "short"
        if held is None:
            data["positions"][symbol] = {
                "symbol": symbol,
                "side": wanted,
                "contracts": amount,
                "entryPrice": self.price,
                "leverage": leverage,
            }
        elif held["side"] == wanted:
            held["contracts"] += amount
        else:
            held["contracts"] -= amount
            if held["contracts"] <= 1e-12:
                del data["positions"][symbol]
        self._save(data)

    def rest(self, symbol: str, side: str, amount: float, price: float, leverage: float) -> str:
        """A limit order resting on the book; its id."""
        data = self._load()
        data["orders"] += 1
        limits = data.setdefault("limits", {})
        order_id = f"L{len(limits) + 1}"
        limits[order_id] = {
            "id": order_id,
            "symbol": symbol,
            "side": side,
            "amount": amount,
            "price": price,
            "leverage": leverage,
            "status": "open",
            "filled": 0.0,
        }
        self._save(data)
        return order_id

    def limit(self, order_id: str) -> dict[str, Any] | None:
        found = self._load().get("limits", {}).get(order_id)
        return None if found is None else dict(found)

    def resting(self) -> list[str]:
        """The ids of the limit orders still open."""
        return [i for i, o in self._load().get("limits", {}).items() if o["status"] == "open"]

    def cancel(self, order_id: str) -> bool:
        """Cancels a resting order; False when it is not open (filled, cancelled, unknown)."""
        data = self._load()
        order = data.get("limits", {}).get(order_id)
        if order is None or order["status"] != "open":
            return False
        order["status"] = "canceled"
        self._save(data)
        return True

    def cross(self, price: float) -> None:
        """The price moves to ``price``: resting orders it reaches fill at their price."""
        self.price = price
        for order in list(self._load().get("limits", {}).values()):
            reached = price <= order["price"] if order["side"] == "buy" else price >= order["price"]
            if order["status"] == "open" and reached:
                self.fill(order["symbol"], order["side"], order["amount"], order["leverage"])
                data = self._load()
                data["limits"][order["id"]].update(status="closed", filled=order["amount"])
                self._save(data)

    def close(self, symbol: str) -> bool:
        """Closes ``symbol``; False when there is nothing to close."""
        data = self._load()
        data["orders"] += 1
        found = data["positions"].pop(symbol, None) is not None
        self._save(data)
        return found


class FileVenueClient:
    """The bot's client shape (spec §4: positional ``create_market_order`` and
    ``close_position(symbol)``) over a ``FileVenue``: prices are the venue's, there are no
    candles, and each order is handed to ``_market`` / ``_close``."""

    def __init__(self, venue: FileVenue) -> None:
        self.venue = venue

    def get_open_positions(self) -> list[dict[str, Any]]:
        return self.venue.positions()

    def get_ticker(self, symbol: str, priority: Any = None) -> dict[str, Any]:
        return {"last": self.venue.price}

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
        return []

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: int = 10,
        max_slippage: float = 0.01,
        validate_depth: bool = True,
        reduce_only: bool = False,
        is_critical: bool = False,
    ) -> dict[str, Any] | None:
        return self._market(symbol, side, float(amount), float(leverage))

    def close_position(self, symbol: str) -> bool:
        return self._close(symbol)

    def create_limit_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        price: float,
        leverage: int = 10,
        post_only: bool = False,
        reduce_only: bool = False,
        is_critical: bool = False,
    ) -> dict[str, Any] | None:
        order_id = self.venue.rest(symbol, side, float(amount), float(price), float(leverage))
        return {"id": order_id, "status": "open"}

    def cancel_order(self, order_id: str, symbol: str) -> bool:
        return self.venue.cancel(order_id)

    def wait_for_order_fill(
        self, order_id: str, symbol: str, timeout: int = 30, check_interval: int = 2
    ) -> dict[str, Any] | None:
        """The order's status at once (the venue is a file: nothing moves while one waits)."""
        order = self.venue.limit(order_id)
        if order is None:
            return None
        remaining = order["amount"] - order["filled"]
        return {**order, "remaining": remaining, "average": order["price"]}

    def _market(self, symbol: str, side: str, amount: float, leverage: float) -> Any:
        self.venue.fill(symbol, side, amount, leverage)
        return {"status": "closed", "filled": amount}

    def _close(self, symbol: str) -> bool:
        return self.venue.close(symbol)
