"""The bot's manager in the venue runs (tests/test_venue_soak.py, tests/test_venue_crash_soak.py
and its child tests/venue_crash_child.py): ``CcxtClient`` over a venue's real ccxt class,
journaled, on a manual clock; and the bot's shutdown at the end of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from venue_sim import Dialect

from position_manager_rs import ManualClock, PositionManager
from position_manager_rs.ccxt_client import CcxtClient

#: ``outcome_grace_seconds``: one tick of the manager's clock (see test_named_orders_soak.py).
GRACE = 60.0


def soak_manager(
    exchange: Any,
    dialect: Dialect,
    hedge: bool,
    journal: str | Path,
    account: str,
    clock: ManualClock,
    workers: int = 1,
) -> PositionManager:
    """A manager over ``exchange`` (a ccxt object pointed at the venue) journaled to
    ``journal`` under ``account``, in hedge or one-way mode, reading prices and candles from
    ``workers`` threads at once (``max_concurrent_calls``)."""
    mode = "hedge" if hedge and not dialect.mode_readable_when_flat else "auto"
    # The client's clock is the manager's (its not-found grace and its market reloads count in
    # the run's minutes, not in how fast this machine runs them): the runs are deterministic.
    client = CcxtClient(
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
        max_concurrent_calls=workers,
        journal=str(journal),
        account=account,
    )


def shut_down(pm: PositionManager, clock: ManualClock) -> None:
    """The bot's shutdown: it closes what it holds, then runs a calm cycle and a sync, four
    rounds a minute apart (a close refused or unverified in one round is sent again in the
    next)."""
    for _ in range(4):
        for key in sorted(pm.positions):
            pm.close_position(key, "shutdown")
        clock.advance(60)
        list(pm.update_positions())
        pm.sync_existing_positions()
