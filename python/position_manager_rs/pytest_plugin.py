"""pytest fixtures for testing a bot against ``position_manager_rs`` (a ``pytest11`` plugin).

Installed with the package and loaded by pytest automatically (disable it with
``-p no:position_manager_rs``). Fixtures:

* ``paper_exchange``: a fresh :class:`~position_manager_rs.PaperExchange` (seed 0). Options
  from the ``paper_exchange`` marker: ``@pytest.mark.paper_exchange(seed=3, volatility=0.0)``.
* ``paper_manager``: a :class:`~position_manager_rs.PositionManager` on ``paper_exchange`` that
  reads the exchange's clock (paper time: ages, profit velocity and the 24 h rules follow
  ``paper_exchange.advance()``), with no ticker retry pauses. Options (trailing stop and
  keyword options) from the ``paper_manager`` marker:
  ``@pytest.mark.paper_manager(0.03, missing_confirmations=2)``.
* ``frozen_clock``: the process-wide clock frozen (at 2025-01-01 00:00 unless the
  ``frozen_clock`` marker gives a naive datetime) for the test, then released; yields the
  :class:`~position_manager_rs.testing.FrozenClock` handle (``now()``, ``set()``,
  ``advance()``). ``Position`` objects a test builds itself and managers without a ``clock=``
  read this clock. A ``with testing.frozen_clock(...)`` block inside the test (in a helper,
  say) puts the fixture's frozen time back when it ends.

See docs/paper-exchange.md for an example.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from . import PaperExchange, PositionManager, testing
from .testing import FrozenClock

__all__ = ["FROZEN_START", "frozen_clock", "paper_exchange", "paper_manager"]

#: Where the ``frozen_clock`` fixture freezes the process-wide clock unless told otherwise.
FROZEN_START = datetime(2025, 1, 1)

_MARKERS = (
    "paper_exchange(**options): PaperExchange keyword options for the paper_exchange fixture",
    "paper_manager(trailing_stop_percentage=0.02, **options): PositionManager options for the "
    "paper_manager fixture",
    "frozen_clock(start): the naive datetime the frozen_clock fixture starts at",
)


def pytest_configure(config: pytest.Config) -> None:
    """Registers the markers the fixtures read."""
    for line in _MARKERS:
        config.addinivalue_line("markers", line)


def _marker(request: pytest.FixtureRequest, name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    marker = request.node.get_closest_marker(name)
    return ((), {}) if marker is None else (marker.args, dict(marker.kwargs))


@pytest.fixture
def paper_exchange(request: pytest.FixtureRequest) -> PaperExchange:
    """A fresh paper exchange (options from ``@pytest.mark.paper_exchange(...)``)."""
    args, options = _marker(request, "paper_exchange")
    if args:
        raise TypeError("the paper_exchange marker takes keyword options only")
    return PaperExchange(**options)


@pytest.fixture
def paper_manager(request: pytest.FixtureRequest, paper_exchange: PaperExchange) -> PositionManager:
    """A manager on ``paper_exchange``, in paper time (options from
    ``@pytest.mark.paper_manager(...)``)."""
    args, options = _marker(request, "paper_manager")
    options.setdefault("ticker_retry_delays", ())
    options.setdefault("clock", paper_exchange.clock)
    return PositionManager(paper_exchange, *args, **options)


@pytest.fixture
def frozen_clock(request: pytest.FixtureRequest) -> Iterator[FrozenClock]:
    """The process-wide clock, frozen for the test (start from ``@pytest.mark.frozen_clock``)."""
    args, options = _marker(request, "frozen_clock")
    start = options.pop("start", args[0] if args else FROZEN_START)
    if options or len(args) > 1:
        raise TypeError("the frozen_clock marker takes one argument: start")
    with testing.frozen_clock(start) as clock:
        yield clock
