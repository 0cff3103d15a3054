"""Test helpers: control the clock that positions and managers read.

Positions record ``datetime.now()``-style naive local times (entry time, profit velocity, age).
To make tests and fixture replays deterministic, freeze that clock::

    from datetime import datetime
    from position_manager_rs.testing import frozen_clock

    with frozen_clock(datetime(2025, 1, 1)) as clock:
        p = Position("BTC/USDT:USDT", "long", 100.0, 1.0, 10, 95.0, 115.0)
        clock.advance(seconds=3600)          # one hour later
        p.update_take_profit(101.0)

The clock is process-wide: while frozen, every ``Position`` and ``PositionManager`` in the process
sees it. Leaving the ``with`` block puts it back as it was when the block began: following the
system clock again, or, when the block is nested in another freeze (an outer ``frozen_clock``
block, the ``frozen_clock`` pytest fixture, ``freeze_clock``), frozen at the time it showed then.

Simulations and notebooks that drive time themselves (e.g. with ``PaperExchange``) can freeze it
without a ``with`` block: ``clock = freeze_clock(start)`` ... ``unfreeze_clock()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from . import _core

__all__ = ["FrozenClock", "freeze_clock", "frozen_clock", "unfreeze_clock"]


class FrozenClock:
    """Handle on the frozen process-wide clock (see :func:`frozen_clock`)."""

    def now(self) -> datetime:
        """The frozen time (naive datetime)."""
        return _core._clock_now()

    def set(self, at: datetime) -> None:
        """Moves the clock to ``at`` (a naive datetime)."""
        _core._freeze_clock(at)

    def advance(
        self,
        seconds: float | None = None,
        *,
        minutes: float | None = None,
        hours: float | None = None,
        delta: timedelta | None = None,
    ) -> datetime:
        """Moves the clock by ``seconds + 60 * minutes + 3600 * hours`` (plus ``delta``);
        negative values move it back. Returns the new time.

        As ``ManualClock.advance``: a wrong argument is a ``TypeError`` or ``ValueError``
        naming it and the value, and a move out of ``datetime``'s range (years 1 to 9999) a
        ``ValueError``; either way the clock stays where it was. ``RuntimeError`` if the clock
        is not frozen.
        """
        return _core._advance_clock(seconds, minutes=minutes, hours=hours, delta=delta)


def freeze_clock(start: datetime | None = None) -> FrozenClock:
    """Freezes the clock at ``start`` (default: now) until :func:`unfreeze_clock`."""
    if start is None:
        start = datetime.now()
    if not isinstance(start, datetime):
        raise TypeError(f"start must be a naive datetime, got {start!r} ({type(start).__name__})")
    if start.tzinfo is not None:
        raise TypeError(f"start must be a naive datetime (no tzinfo), got {start!r}")
    _core._freeze_clock(start)
    return FrozenClock()


def unfreeze_clock() -> None:
    """Lets the clock follow the system clock again."""
    _core._unfreeze_clock()


@contextmanager
def frozen_clock(start: datetime | None = None) -> Iterator[FrozenClock]:
    """Freezes the clock at ``start`` (default: now) for the duration of the ``with`` block.

    On leaving the block the clock is put back as it was when the block began: frozen at the
    time it showed then (an enclosing freeze, e.g. an outer block or the ``frozen_clock``
    fixture), or following the system clock.
    """
    outer = _core._clock_now() if _core._clock_is_frozen() else None
    clock = freeze_clock(start)
    try:
        yield clock
    finally:
        if outer is None:
            _core._unfreeze_clock()
        else:
            _core._freeze_clock(outer)
