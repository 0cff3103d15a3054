"""The exchange client the manager calls back: the bot's own client, described as a Protocol.

Any object with these methods works (the bot's ``KuCoinClient``, a ccxt adapter, a
``unittest.mock.Mock``). The manager calls them with exactly these shapes (positional versus
keyword arguments as the original bot) and copes with any return value: ``None``, ``[]``,
malformed dicts and exceptions are handled without losing a tracked position.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["ExchangeClient"]


@runtime_checkable
class ExchangeClient(Protocol):
    """What ``PositionManager`` needs from the bot's exchange client.

    Return shapes are ccxt's unified structures:

    * ``get_open_positions()`` -> list of position dicts with at least ``symbol``, ``contracts``,
      ``side`` ('long'/'short'), ``entryPrice``, ``leverage`` (or ``info['realLeverage']``).
      Raising (or returning anything but a list) means "unknown": nothing is removed.
    * ``get_ticker(symbol)`` -> dict with ``last`` (float > 0), or ``None``.
    * ``get_ohlcv(symbol, timeframe='1h', limit=100)`` -> list of
      ``[timestamp_ms, open, high, low, close, volume]``, or ``[]``/``None``.
    * ``close_position(symbol)`` -> truthy when the position was closed on the exchange.

    Called with keywords/positions exactly as: ``get_open_positions()``, ``get_ticker(symbol)``,
    ``get_ohlcv(symbol, timeframe='1h', limit=100)``, ``close_position(symbol)``.
    """

    def get_open_positions(self) -> list[dict[str, Any]]: ...

    def get_ticker(self, symbol: str) -> dict[str, Any] | None: ...

    def get_ohlcv(
        self, symbol: str, timeframe: str = "1h", limit: int = 100
    ) -> list[list[float]]: ...

    def close_position(self, symbol: str) -> bool: ...
