"""Shared pytest fixtures: Mock exchange clients and Position factories.

Kept deliberately small; anything specific to one test module lives in that module.

* ``make_mock_client(...)`` builds a ``unittest.mock.Mock`` client. Only the methods given are
  configured; every other method stays an unconfigured ``Mock`` attribute (returning a ``Mock``),
  exactly like the original suite's ``Mock()`` clients.
* ``mock_client`` is a bare ``Mock()`` made by that factory (the originals' ``setUp``).
* ``make_position(...)`` builds a ``Position``; defaults are the original suite's usual long
  (BTC/USDT:USDT, entry 50000, 0.01 contracts, 10x, SL 49000, TP 52000).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any
from unittest.mock import Mock

import pytest
from hypothesis import settings

from position_manager_rs import Position

# pytest's own fixture for testing plugins (tests/test_pytest_plugin.py runs the package's), and
# how pytest-xdist spreads the suite over its workers (tests/xdist_scheduling.py).
pytest_plugins = ["pytester", "xdist_scheduling"]

# Every hypothesis test is derandomized unless PMRS_LONG=1 asks for long random runs: a test
# module that forgets to say so still runs the same examples in CI on every machine. Settings a
# test gives explicitly still win.
settings.register_profile("pmrs-fixed", derandomize=True)
if os.environ.get("PMRS_LONG") != "1":
    settings.load_profile("pmrs-fixed")

_UNSET: Any = object()


def _exchange_entry(
    symbol: str, side: str = "long", contracts: float = 0.01, leverage: float = 10
) -> dict[str, Any]:
    """One ``get_open_positions()`` entry in the shape the original tests used."""
    return {"symbol": symbol, "side": side, "contracts": contracts, "leverage": leverage}


def _build_mock_client(
    *,
    open_positions: Iterable[str | dict[str, Any]] | Any | None = _UNSET,
    ticker: float | dict[str, Any] | Any | None = _UNSET,
    ohlcv: Any = _UNSET,
    close_result: Any = _UNSET,
) -> Mock:
    client = Mock()
    if open_positions is not _UNSET:
        if open_positions is None:
            client.get_open_positions = Mock(return_value=None)
        else:
            entries = [_exchange_entry(p) if isinstance(p, str) else p for p in open_positions]
            client.get_open_positions = Mock(return_value=entries)
    if ticker is not _UNSET:
        value = {"last": ticker} if isinstance(ticker, (int, float)) else ticker
        client.get_ticker = Mock(return_value=value)
    if ohlcv is not _UNSET:
        client.get_ohlcv = Mock(return_value=ohlcv)
    if close_result is not _UNSET:
        client.close_position = Mock(return_value=close_result)
    return client


@pytest.fixture
def make_mock_client() -> Callable[..., Mock]:
    """Factory for Mock exchange clients.

    Keywords (all optional; an omitted one leaves that method an unconfigured Mock):
    ``open_positions`` (symbols and/or dicts; a symbol becomes the original tests' entry
    ``{'symbol': s, 'side': 'long', 'contracts': 0.01, 'leverage': 10}``; ``None`` makes the call
    return ``None``), ``ticker`` (a number becomes ``{'last': number}``; a dict or ``None`` is
    returned as is), ``ohlcv`` (returned as is), ``close_result`` (what ``client.close_position``
    returns).
    """
    return _build_mock_client


@pytest.fixture
def mock_client() -> Mock:
    """A bare ``Mock()`` client with nothing configured (the original suites' ``setUp``)."""
    return _build_mock_client()


@pytest.fixture
def make_position() -> Callable[..., Position]:
    """Factory for ``Position`` objects, keyword arguments as the original constructor."""

    def _make(
        symbol: str = "BTC/USDT:USDT",
        side: str = "long",
        entry_price: float = 50000.0,
        amount: float = 0.01,
        leverage: float = 10,
        stop_loss: float = 49000.0,
        take_profit: float | None = 52000.0,
    ) -> Position:
        return Position(
            symbol=symbol,
            side=side,
            entry_price=entry_price,
            amount=amount,
            leverage=leverage,
            stop_loss=stop_loss,
            take_profit=take_profit,
        )

    return _make
