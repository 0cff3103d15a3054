"""asyncio support: an asyncio bot drives the manager without blocking its event loop.

Two pieces:

* ``AsyncCcxtClient(exchange)`` adapts a ``ccxt.async_support`` exchange. It is a ``CcxtClient``
  (same answers, same failure semantics: reads raise, definitive rejections answer ``None``,
  unknown outcomes raise, legs named in hedge mode) whose exchange calls are submitted to the
  bot's running event loop (``asyncio.run_coroutine_threadsafe``) and waited for, at most
  ``call_timeout`` seconds, from the thread the manager runs in.
* The manager's ``a``-prefixed methods: ``aupdate_positions()`` (an async generator), and
  ``aopen_position``, ``aclose_position``, ``ascale_in_position``, ``ascale_out_position``,
  ``async_existing_positions`` (``a`` + ``sync_existing_positions``), ``areconcile_positions``.
  Each runs the synchronous method in a worker thread (the manager calls' own executor, one per
  loop: not the loop's default executor, which aiohttp's host-name look-ups need while these
  calls wait for the loop), so the loop keeps serving while the manager waits for the venue;
  ``aupdate_positions`` advances the synchronous iterator one item per worker call, so it is as
  lazy as ``update_positions()`` (each closed position reaches the loop body before the next
  one is examined).

::

    import ccxt.async_support as ccxt
    from position_manager_rs import PositionManager
    from position_manager_rs.aio import AsyncCcxtClient

    async def main():
        exchange = ccxt.kucoinfutures({...})
        client = AsyncCcxtClient(exchange)          # inside the loop: the running loop is used
        manager = PositionManager(client)
        await manager.async_existing_positions()
        while True:
            async for symbol, pnl, position in manager.aupdate_positions():
                ...
            await asyncio.sleep(60)

A synchronous manager method called on the event loop's own thread with an ``AsyncCcxtClient``
would wait for a coroutine that loop can never run: the client raises ``RuntimeError`` instead
of hanging (use the ``a`` methods). The manager's guarantees do not change: the ``a`` methods are
the synchronous ones, run elsewhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Any

from ._core import _StepAbandoned
from .ccxt_client import CcxtClient, is_async_exchange

__all__ = [
    "AsyncCcxtClient",
    "aclose_position",
    "aopen_position",
    "areconcile_positions",
    "ascale_in_position",
    "ascale_out_position",
    "async_existing_positions",
    "aupdate_positions",
]

_END = object()


class _LoopBridge:
    """A synchronous face of an asyncio exchange: coroutine methods run on ``loop``, awaited here.

    Every other attribute (``id``, ``has``, ``markets``, ``precisionMode``, ``options``, ...) is
    the exchange's own.
    """

    def __init__(self, exchange: Any, loop: asyncio.AbstractEventLoop, call_timeout: float) -> None:
        object.__setattr__(self, "_exchange", exchange)
        object.__setattr__(self, "_loop", loop)
        object.__setattr__(self, "_timeout", call_timeout)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._exchange, name)
        if inspect.iscoroutinefunction(value):

            @functools.wraps(value)
            def call(*args: Any, **kwargs: Any) -> Any:
                return self._run(value(*args, **kwargs), name)

            return call
        if not callable(value) or inspect.isclass(value):
            return value

        # ccxt's implicit endpoint methods (``privateGetV5OrderRealtime``, ...) are plain
        # callables that answer a coroutine: run that on the loop too; the rest (parse_order,
        # market, ...) answer at once.
        @functools.wraps(value)
        def maybe(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if inspect.iscoroutine(result):
                return self._run(result, name)
            return result

        return maybe

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._exchange, name, value)

    def _refuse_on_the_loop(self, name: str) -> None:
        """Raises ``RuntimeError`` on the loop's own thread, where waiting for the loop (for a call
        of ``name``, or for a lock a worker holds while it waits for the loop) would block it."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError(
                f"AsyncCcxtClient: exchange.{name}() called on the event loop's own thread, where "
                "waiting for it would block the loop forever; call the manager's a-methods "
                "(await manager.aclose_position(...), async for ... in manager.aupdate_positions())"
            )

    def _run(self, coroutine: Any, name: str) -> Any:
        loop: asyncio.AbstractEventLoop = self._loop
        try:
            self._refuse_on_the_loop(name)
        except RuntimeError:
            coroutine.close()
            raise
        if loop.is_closed():
            coroutine.close()
            raise RuntimeError(f"AsyncCcxtClient: the event loop is closed ({name})")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"exchange.{name}() did not answer within {self._timeout} s: its outcome is unknown"
            ) from None


class AsyncCcxtClient(CcxtClient):
    """``CcxtClient`` on a ``ccxt.async_support`` exchange (see the module docstring).

    ``loop`` is the event loop the exchange lives on; by default the running loop of the thread
    that creates the client (create it inside the bot's async code). ``call_timeout`` (seconds)
    bounds each exchange call as seen from the manager's thread (an expiry raises
    ``TimeoutError``: an unknown outcome, like a ccxt timeout); keep it above the exchange's
    own ``timeout``. Every other keyword is ``CcxtClient``'s. ``async_exchange`` is the exchange
    itself, for the bot's own awaits; ``await client.aclose()`` closes its HTTP session.
    """

    def __init__(
        self,
        exchange: Any,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        call_timeout: float = 60.0,
        **options: Any,
    ) -> None:
        if not is_async_exchange(exchange):
            raise TypeError(
                f"AsyncCcxtClient needs an asyncio ccxt exchange (ccxt.async_support), got "
                f"{type(exchange).__module__}.{type(exchange).__name__}: use CcxtClient"
            )
        if not (isinstance(call_timeout, (int, float)) and call_timeout > 0):
            raise ValueError(f"call_timeout must be a number > 0, got {call_timeout!r}")
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise TypeError(
                    "AsyncCcxtClient: no running event loop; create it inside your async code "
                    "or pass loop=..."
                ) from None
        self.async_exchange = exchange
        self.loop = loop
        self.call_timeout = float(call_timeout)
        super().__init__(_LoopBridge(exchange, loop, self.call_timeout), **options)

    def __repr__(self) -> str:
        name = getattr(self.async_exchange, "id", None) or type(self.async_exchange).__name__
        return f"AsyncCcxtClient({name})"

    def _http_exchange(self) -> Any:
        return self.async_exchange

    def _loaded_markets(self) -> Any:
        # On the loop's own thread, refused before CcxtClient waits for its markets lock: a
        # worker holding it waits for the loop to load the markets, so waiting for the lock
        # there would block the loop until that load timed out.
        if not getattr(self.exchange, "markets", None):
            self.exchange._refuse_on_the_loop("load_markets")
        return super()._loaded_markets()

    async def aclose(self) -> None:
        """Closes the exchange's HTTP session (``await exchange.close()``)."""
        await self.async_exchange.close()


# --------------------------------------------------------------------------- manager methods

#: Threads the manager's calls run in, per event loop. Not the loop's default executor: a call
#: waits for the loop (each exchange call runs there), and aiohttp's host-name lookup runs in
#: the default executor (``loop.getaddrinfo``), so calls filling it would wait for lookups
#: waiting for them. The threads wait for the venue, not the CPU: many, created on demand.
_MAX_WORKERS = 64
_EXECUTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, concurrent.futures.Executor] = (
    weakref.WeakKeyDictionary()
)
_SHARED: list[concurrent.futures.ThreadPoolExecutor] = []
_EXECUTORS_LOCK = threading.Lock()


def _new_executor() -> concurrent.futures.ThreadPoolExecutor:
    # Not daemon threads: at interpreter exit concurrent.futures lets a call in progress finish
    # (an exchange call on a closed loop is refused at once, a waiting one ends by call_timeout)
    # and ends the idle threads.
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=_MAX_WORKERS, thread_name_prefix="position-manager"
    )


def _executor(loop: asyncio.AbstractEventLoop) -> concurrent.futures.Executor:
    """The executor of the manager calls made from ``loop``, shared by its managers; shut down
    (its idle threads end) when the loop is gone."""
    with _EXECUTORS_LOCK:
        try:
            executor = _EXECUTORS.get(loop)
        except TypeError:  # a loop that takes no weak reference: one executor for all of them
            if not _SHARED:
                _SHARED.append(_new_executor())
            return _SHARED[0]
        if executor is None:
            new = _new_executor()
            _EXECUTORS[loop] = new
            weakref.finalize(loop, new.shutdown, wait=False)
            executor = new
        return executor


async def _in_worker(func: Any, *args: Any) -> Any:
    """``func(*args)`` in a thread of the manager calls' executor, in this task's context, after
    raising an interruption kept for the manager (``func``'s ``__self__``)."""
    await _raise_kept(func.__self__)
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args)
    return await loop.run_in_executor(_executor(loop), call)


#: Per manager, the closes a step made after the task awaiting it was cancelled, and the
#: interruptions nobody was there to receive: the next ``aupdate_positions()`` yields (or
#: raises) them first, in order; any other a-method raises the first interruption.
_UNDELIVERED: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
_UNDELIVERED_LOCK = threading.Lock()
#: Per manager, the closes of cycles the bot left that are running in a worker thread.
_CLOSING: weakref.WeakKeyDictionary[Any, set[concurrent.futures.Future[Any]]] = (
    weakref.WeakKeyDictionary()
)


class _Raised:
    """An interruption (``KeyboardInterrupt``, ``SystemExit``, any ``BaseException`` that is not an
    ``Exception``) a step met, to be raised by whoever receives it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Step:
    """One advance (``next``) or the close of a cycle's iterator, in a worker thread. If the
    task awaiting it is cancelled meanwhile (``asyncio.wait_for``, a Ctrl+C, a shutdown), the
    advance stops at its next client call, as a synchronous cycle stops at a Ctrl+C (nothing
    more is sent for it; what it did stands); the closed position it yielded — or the
    interruption it raised — is kept for the manager's next ``aupdate_positions()`` instead of
    being lost with the cancelled await, and the iterator is closed after it on the same
    thread."""

    def __init__(self, manager: Any, iterator: Any, closing: bool = False) -> None:
        self.manager = manager
        self.iterator = iterator
        self.closing = closing
        self.lock = threading.Lock()
        self.abandoned = False
        self.returned = False
        self.result: Any = _END

    def run(self) -> Any:
        """The item yielded (``_END`` at the end), or a ``_Raised``."""
        result: Any
        try:
            if self.closing:
                self.iterator.close()
                result = _END
            else:
                result = next(self.iterator, _END)
        except Exception:
            raise
        except _StepAbandoned:
            result = _END  # given up by abandon(): the step ended at a client call
        except BaseException as e:  # an interruption: to the awaiting task, or kept
            result = _Raised(e)
        with self.lock:
            self.returned, self.result = True, result
            abandoned = self.abandoned
            if abandoned:
                _keep(self.manager, result)
        if abandoned:
            self._close_after()
        return result

    def abandon(self) -> None:
        """The awaiting task was cancelled: whatever this step yields (or yielded already,
        without its task seeing it) is kept, and the cycle is closed after it."""
        with self.lock:
            self.abandoned = True
            if not self.returned:
                if not self.closing:
                    # The step stops at its next client call, as at a Ctrl+C: nothing more is
                    # sent for a cycle nobody waits for (what it did already stands).
                    self.iterator._abandon()
                return  # run() keeps what it returns and closes the cycle
            _keep(self.manager, self.result)
        self._close_after()

    def _close_after(self) -> None:
        """Closes the iterator after an abandoned advance that left the cycle open (an
        interruption a read made ahead met is kept)."""
        if self.closing or self.result is _END or isinstance(self.result, _Raised):
            return
        try:
            self.iterator.close()
        except Exception:
            pass  # "already executing" cannot happen: this step was its last user
        except BaseException as e:
            _keep(self.manager, _Raised(e))


def _keep(manager: Any, item: Any) -> None:
    if item is not _END:
        with _UNDELIVERED_LOCK:
            _UNDELIVERED.setdefault(manager, []).append(item)


def _next_undelivered(manager: Any) -> Any:
    """The first thing kept for ``manager`` (taken out), or ``_END``: one at a time, so a loop
    body that leaves after the first leaves the rest for the next cycle."""
    with _UNDELIVERED_LOCK:
        kept = _UNDELIVERED.get(manager)
        if not kept:
            return _END
        item = kept.pop(0)
        if not kept:
            del _UNDELIVERED[manager]
        return item


async def _settled(manager: Any) -> None:
    """Before an a-method runs: a cycle the bot left (``break``) is closed by the loop a moment
    later, in a task of its own (the async generator's finalizer); waits for that close, so
    that an interruption it raises (a read made ahead met it) is raised by this call."""
    for _ in range(2):  # the finalizer's task starts two loop iterations after the break
        await asyncio.sleep(0)
    with _UNDELIVERED_LOCK:
        closing = list(_CLOSING.get(manager, ()))
    if closing:
        await asyncio.wait([asyncio.wrap_future(f) for f in closing])


async def _raise_kept(manager: Any) -> None:
    """Raises the first interruption kept for ``manager`` (closes stay for the next cycle)."""
    await _settled(manager)
    with _UNDELIVERED_LOCK:
        kept = _UNDELIVERED.get(manager, [])
        for i, item in enumerate(kept):
            if isinstance(item, _Raised):
                del kept[i]
                if not kept:
                    del _UNDELIVERED[manager]
                raise item.error


def _closed_by_the_loop() -> bool:
    """Whether the current task is the loop closing an async generator on its own (the
    finalizer of one the bot dropped, ``shutdown_asyncgens``): nobody receives what it raises."""
    task = asyncio.current_task()
    return task is not None and type(task.get_coro()).__name__ == "async_generator_athrow"


async def _advance(
    loop: asyncio.AbstractEventLoop, step: _Step, executor: concurrent.futures.Executor
) -> Any:
    future = executor.submit(contextvars.copy_context().run, step.run)
    if step.closing:
        with _UNDELIVERED_LOCK:
            _CLOSING.setdefault(step.manager, set()).add(future)

        def done(f: concurrent.futures.Future[Any]) -> None:
            with _UNDELIVERED_LOCK:
                _CLOSING.get(step.manager, set()).discard(f)

        future.add_done_callback(done)
    try:
        result = await asyncio.wrap_future(future, loop=loop)
    except asyncio.CancelledError:
        step.abandon()
        raise
    if isinstance(result, _Raised) and not step.abandoned:  # an abandoned step kept it
        raise result.error
    return result


async def aupdate_positions(self: Any) -> AsyncGenerator[tuple[str, float, Any], None]:
    """``async for symbol, pnl, position in manager.aupdate_positions()``.

    The synchronous ``update_positions()`` iterator, advanced one item per worker-thread call:
    nothing runs before the first ``__anext__``, and each closed position reaches the loop body
    before the next one is examined. Leaving the loop early leaves the rest of the cycle undone,
    exactly as breaking out of ``update_positions()`` does; the cycle is closed in a worker
    thread, and an interruption a read made ahead met (``max_concurrent_calls`` > 1) is raised
    by ``await cycle.aclose()``, or, after a ``break``, by the manager's next a-method.

    Cancelling the task that awaits a step (``asyncio.wait_for`` timing out, a shutdown) raises
    ``CancelledError`` at once; the step already running in its thread stops at its next
    client call, as a synchronous cycle stops at a Ctrl+C (a call in flight answers first, and
    nothing more is sent for the step), and a position it closed is yielded first by this
    manager's next ``aupdate_positions()``, so the bot's loop body sees every close; an
    interruption it raises
    (``KeyboardInterrupt``, ``SystemExit``) is raised by the manager's next a-method. A step not
    yet started when its task is cancelled does not run.
    """
    await _settled(self)
    while (kept := _next_undelivered(self)) is not _END:
        if isinstance(kept, _Raised):
            # An interruption nobody received: raised as it came (what came after it waits
            # for the next call).
            raise kept.error
        # Taken out just before it is yielded: a loop body that leaves (break, an exception, a
        # cancel) after this one leaves the others for the next cycle.
        yield kept
    iterator = self.update_positions()
    loop = asyncio.get_running_loop()
    executor = _executor(loop)
    at_yield = False
    try:
        while True:
            item = await _advance(loop, _Step(self, iterator), executor)
            if item is _END:
                return
            at_yield = True
            yield item
            at_yield = False
    finally:
        if at_yield:  # left at a yield (aclose(), a break): the cycle is closed in a thread
            step = _Step(self, iterator, closing=True)
            if _closed_by_the_loop():
                step.abandon()  # nobody awaits this close: what it raises is kept
            await _advance(loop, step, executor)


async def aopen_position(
    self: Any,
    symbol: str,
    signal: str,
    amount: float,
    leverage: float,
    stop_loss_percentage: float = 0.05,
    use_limit: bool = False,
    limit_offset: float = 0.001,
) -> bool:
    """``await manager.aopen_position(...)``: ``open_position`` in a worker thread."""
    return bool(
        await _in_worker(
            self.open_position,
            symbol,
            signal,
            amount,
            leverage,
            stop_loss_percentage,
            use_limit,
            limit_offset,
        )
    )


async def aclose_position(self: Any, symbol: str, reason: str = "manual") -> float | None:
    """``await manager.aclose_position(...)``: ``close_position`` in a worker thread."""
    result: float | None = await _in_worker(self.close_position, symbol, reason)
    return result


async def ascale_in_position(
    self: Any, symbol: str, additional_amount: float, current_price: float
) -> bool:
    """``await manager.ascale_in_position(...)``: ``scale_in_position`` in a worker thread."""
    return bool(await _in_worker(self.scale_in_position, symbol, additional_amount, current_price))


async def ascale_out_position(
    self: Any, symbol: str, amount_to_close: float, reason: str = "scale_out"
) -> float | None:
    """``await manager.ascale_out_position(...)``: ``scale_out_position`` in a worker thread."""
    result: float | None = await _in_worker(
        self.scale_out_position, symbol, amount_to_close, reason
    )
    return result


async def async_existing_positions(self: Any) -> int:
    """``await manager.async_existing_positions()``: ``sync_existing_positions`` in a thread."""
    return int(await _in_worker(self.sync_existing_positions))


async def areconcile_positions(self: Any) -> int:
    """``await manager.areconcile_positions()``: ``reconcile_positions`` in a worker thread."""
    return int(await _in_worker(self.reconcile_positions))


#: The methods installed on ``PositionManager`` (``position_manager_rs/__init__.py``).
MANAGER_METHODS = {
    "aupdate_positions": aupdate_positions,
    "aopen_position": aopen_position,
    "aclose_position": aclose_position,
    "ascale_in_position": ascale_in_position,
    "ascale_out_position": ascale_out_position,
    "async_existing_positions": async_existing_positions,
    "areconcile_positions": areconcile_positions,
}
