"""A fake venue (``venue_sim``) reached through either client a bot may use.

``connected(dialect, "sync")``: ``CcxtClient`` on ccxt's synchronous class for the venue, the
manager called directly. ``connected(dialect, "asyncio")``: ``AsyncCcxtClient`` on
``ccxt.async_support``'s class for the same venue (aiohttp over loopback HTTP), living on an
event loop that runs in a thread of its own, as an asyncio bot's loop runs; the manager is
driven through its ``a``-methods (``aopen_position``, ``aclose_position``,
``aupdate_positions``, ``async_existing_positions``) awaited on that loop, each under
``asyncio.wait_for``. The test's own thread only waits for them, so one test body (venue faults
armed between calls, assertions on the ledger) serves both clients.

The loop's exchange is closed (``await client.aclose()``), its async generators and default
executor shut down and the loop closed when the block ends; whatever the loop's exception
handler received meanwhile (a task's exception nobody retrieved, an unclosed session) fails
the test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from venue_sim import Dialect, FakeVenue, Ledger, running

from position_manager_rs import PositionManager
from position_manager_rs.ccxt_client import CcxtClient

#: The clients a venue case runs through (a test's ``client`` parameter).
CLIENTS = ("sync", "asyncio")
#: The bound (seconds) of each manager call awaited on the loop.
CALL_TIMEOUT = 60.0

_T = TypeVar("_T")


def _on_loop(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Runs ``coroutine`` on ``loop`` (running in another thread) under ``asyncio.wait_for``
    and waits for its result here."""
    future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, CALL_TIMEOUT), loop)
    return future.result(CALL_TIMEOUT + 5)


class Driver:
    """The manager's calls a test makes, made as a bot using the client makes them: directly
    (``loop`` None), or through the ``a``-methods awaited on ``loop``."""

    def __init__(self, manager: PositionManager, loop: asyncio.AbstractEventLoop | None) -> None:
        self.manager = manager
        self.loop = loop

    def open_position(self, *args: Any, **kwargs: Any) -> bool:
        if self.loop is None:
            return self.manager.open_position(*args, **kwargs)
        return _on_loop(self.loop, self.manager.aopen_position(*args, **kwargs))

    def close_position(self, *args: Any, **kwargs: Any) -> float | None:
        if self.loop is None:
            return self.manager.close_position(*args, **kwargs)
        return _on_loop(self.loop, self.manager.aclose_position(*args, **kwargs))

    def sync_existing_positions(self) -> int:
        if self.loop is None:
            return self.manager.sync_existing_positions()
        return _on_loop(self.loop, self.manager.async_existing_positions())

    def update_positions(self) -> list[tuple[str, float, Any]]:
        """One cycle, every closed position it yields."""
        if self.loop is None:
            return list(self.manager.update_positions())

        async def cycle() -> list[tuple[str, float, Any]]:
            return [item async for item in self.manager.aupdate_positions()]

        return _on_loop(self.loop, cycle())


@dataclass
class Connected:
    """A started venue and a client on it (``loop``: the asyncio client's event loop)."""

    venue: FakeVenue
    client: CcxtClient
    loop: asyncio.AbstractEventLoop | None

    def drive(self, manager: PositionManager) -> Driver:
        return Driver(manager, self.loop)


@contextmanager
def connected(
    dialect: Dialect, client: str, *, hedge: bool = False, **options: Any
) -> Iterator[Connected]:
    """A started venue in ``dialect`` and a ``client`` (``"sync"`` or ``"asyncio"``) on it,
    made with ``options`` (``CcxtClient``'s keywords)."""
    if client == "sync":
        with running(dialect, hedge=hedge) as (venue, exchange):
            yield Connected(venue, CcxtClient(exchange, **options), None)
        return
    if client != "asyncio":
        raise ValueError(f"client must be one of {CLIENTS}, got {client!r}")
    import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

    from position_manager_rs.aio import AsyncCcxtClient

    with FakeVenue(dialect, Ledger(dialect.markets, hedge=hedge)) as venue, _bot_loop() as loop:

        async def make() -> AsyncCcxtClient:
            # Inside the bot's loop, as a bot makes it: the running loop is the client's.
            exchange = venue.make_exchange(module=ccxt_async)
            # ccxt's close() sleeps this long (250 ms) for TLS transports to finish closing;
            # the fake venue speaks plain HTTP (a case makes up to 14 clients).
            exchange.timeout_on_exit = 0
            return AsyncCcxtClient(exchange, **options)

        aio_client = _on_loop(loop, make())
        try:
            yield Connected(venue, aio_client, loop)
        finally:
            _on_loop(loop, aio_client.aclose())
            exchange = aio_client.async_exchange
            assert exchange.session is None and exchange.tcp_connector is None, "left open"


@contextmanager
def _bot_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own, closed as ``asyncio.run`` closes its loop
    when the block ends; what its exception handler received fails the block."""
    loop = asyncio.new_event_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    thread = threading.Thread(target=loop.run_forever, name="bot-loop", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        try:
            for ending in (loop.shutdown_asyncgens, loop.shutdown_default_executor):
                asyncio.run_coroutine_threadsafe(ending(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            assert not thread.is_alive(), "the bot's event loop did not stop"
            loop.close()
    assert errors == [], [context.get("message") for context in errors]
