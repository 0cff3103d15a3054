"""The bot's manager in the venue runs (tests/test_venue_soak.py, tests/test_venue_crash_soak.py
and its child tests/venue_crash_child.py): ``CcxtClient`` (or ``AsyncCcxtClient``) over a
venue's real ccxt class, journaled, on a manual clock; the bot's shutdown at the end of a run;
and the two ways a bot calls the manager — a synchronous bot calls its methods, an asyncio bot
awaits their ``a`` twins — so one bot program (a generator of :class:`Call`) runs either way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venue_sim import Dialect

from position_manager_rs import ManualClock, PositionManager
from position_manager_rs.ccxt_client import CcxtClient

#: ``outcome_grace_seconds``: one tick of the manager's clock (see test_named_orders_soak.py).
GRACE = 60.0

#: ``reopen_hold_seconds``: five ticks. The venues answer ``[]`` for lists that are not empty
#: (``FakeVenue.answer_empty_positions``, armed for one or two lists, and now and then armed again
#: on the next tick), as a bot that meets that sets the hold (docs/configuration.md): without
#: one, four such answers in a row untrack a live position and the bot's next open of it goes on
#: top, as documented and pinned in tests/test_reopen_hold.py (BingX hedge seed 52 of the long
#: venue run did just that). Longer than any run of empty answers the faults arm.
HOLD = 300.0


def soak_manager(
    exchange: Any,
    dialect: Dialect,
    hedge: bool,
    journal: str | Path,
    account: str,
    clock: ManualClock,
    workers: int = 1,
    client_class: Callable[..., CcxtClient] = CcxtClient,
) -> PositionManager:
    """A manager over ``exchange`` (a ccxt object pointed at the venue) journaled to
    ``journal`` under ``account``, in hedge or one-way mode, reading prices and candles from
    ``workers`` threads at once (``max_concurrent_calls``), through a ``client_class`` client
    (``AsyncCcxtClient`` for a ``ccxt.async_support`` exchange, made on its running loop)."""
    mode = "hedge" if hedge and not dialect.mode_readable_when_flat else "auto"
    # The client's clock is the manager's (its not-found grace and its market reloads count in
    # the run's minutes, not in how fast this machine runs them): the runs are deterministic.
    client = client_class(
        exchange,
        sleep=lambda s: None,
        clock=lambda: clock.now().timestamp(),
        position_mode=mode,
    )
    return PositionManager(
        client,
        0.02,
        clock=clock,
        ticker_retry_delays=(),
        position_mode="hedge" if hedge else "oneway",
        outcome_grace_seconds=GRACE,
        reopen_hold_seconds=HOLD,
        max_concurrent_calls=workers,
        journal=str(journal),
        account=account,
    )


@dataclass(frozen=True)
class Call:
    """A manager method the bot calls that may reach the venue, by its synchronous name."""

    method: str
    args: tuple[Any, ...] = ()


#: The ``a`` twin of each synchronous method (position_manager_rs/aio.py).
ASYNC_NAMES = {
    "open_position": "aopen_position",
    "close_position": "aclose_position",
    "scale_in_position": "ascale_in_position",
    "scale_out_position": "ascale_out_position",
    "sync_existing_positions": "async_existing_positions",
    "reconcile_positions": "areconcile_positions",
}


def call(pm: PositionManager, c: Call) -> Any:
    """``c`` as a synchronous bot makes it (a cycle is consumed whole)."""
    if c.method == "update_positions":
        return list(pm.update_positions())
    return getattr(pm, c.method)(*c.args)


async def acall(pm: PositionManager, c: Call) -> Any:
    """``c`` as an asyncio bot makes it: the ``a`` method, awaited on the bot's loop."""
    if c.method == "update_positions":
        return [item async for item in pm.aupdate_positions()]
    return await getattr(pm, ASYNC_NAMES[c.method])(*c.args)


def shutdown_calls(pm: PositionManager, clock: ManualClock) -> Iterator[Call]:
    """The bot's shutdown: it closes what it holds, then runs a calm cycle and a sync, four
    rounds a minute apart (a close refused or unverified in one round is sent again in the
    next)."""
    for _ in range(4):
        for key in sorted(pm.positions):
            yield Call("close_position", (key, "shutdown"))
        clock.advance(60)
        yield Call("update_positions")
        yield Call("sync_existing_positions")


def shut_down(pm: PositionManager, clock: ManualClock) -> None:
    """:func:`shutdown_calls`, made by a synchronous bot."""
    for c in shutdown_calls(pm, clock):
        call(pm, c)
