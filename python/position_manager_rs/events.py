"""The manager's events as data: their types and their JSON form.

``manager.events`` (and each ``on_event`` callback's argument) is a list of plain dicts shaped as
:class:`Event`; they pickle and copy as dicts do. Times are naive ``datetime`` objects, which
``json.dumps`` cannot write: :func:`event_to_json` gives the same event with every ``datetime``
as its ISO 8601 text (``2025-03-04T05:06:07.891011``), so ::

    json.dumps(event_to_json(event))

writes any event, and :func:`event_from_json` reads it back (ISO times in the known time fields
become ``datetime`` again). The conversion walks the whole event, so fields added to events
later are carried over as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, Literal, TypedDict

__all__ = [
    "Event",
    "EventEvidence",
    "EventKind",
    "EventPosition",
    "EventReason",
    "event_from_json",
    "event_to_json",
]

#: What an event records. Kinds may be added in later versions: code that dispatches on the
#: kind should have a default branch.
EventKind = Literal[
    "opened",
    "closed",
    "partial_close",
    "scaled_in",
    "targets_changed",
    "removed",
    "restored",
    "imported",
    "resized",
    "added",
    "untracked",
    "loaded",
    "close_unconfirmed",
    "outcome_unknown",
    "outcome_resolved",
    "two_legs",
    "journal_failed",
]

#: The reasons the manager itself gives. A close, partial close or target change carries the
#: reason it was asked with (``close_position(symbol, reason)``, the exit rules' reasons), which
#: can be any string.
EventReason = Literal[
    # removed
    "closed_externally",
    "liquidation",
    "stop_filled_on_exchange",
    "take_profit_filled_on_exchange",
    "side_flipped",  # also imported (the new side) and restored (a flip back)
    "orphaned",
    # imported, restored, resized
    "sync",
    "reconcile",
    "reported_again",
    "size_changed_externally",
    "replaced_externally",  # imported: another position on the side of one that ended outside
    # close_unconfirmed, outcome_unknown, outcome_resolved
    "still_listed",
    "close",
    "scale_out",
    "not_executed",
    "two_legs_in_one_way_mode",
    # opened, scaled_in, targets_changed
    "open",
    "scale_in",
    "modify",
    # added, untracked (manager.positions)
    "assigned",
    "replaced",
    "deleted",
    "popped",
    "cleared",
    # loaded
    "state_file",
    "journal",
]


class EventPosition(TypedDict):
    """The position's fields at the moment of the event (``Position.to_dict()``)."""

    symbol: str
    side: Literal["long", "short"]
    entry_price: float
    amount: float
    leverage: int | float
    stop_loss: float
    take_profit: float | None
    highest_price: float | None
    lowest_price: float | None
    entry_time: datetime
    trailing_stop_activated: bool
    max_favorable_excursion: float
    initial_stop_loss: float
    initial_take_profit: float | None
    last_pnl: float
    last_pnl_time: datetime
    profit_velocity: float
    breakeven_moved: bool
    profit_acceleration: float
    partial_exits_taken: int
    entry_price_estimated: bool
    contract_size: float


class EventEvidence(TypedDict):
    """What a change the manager did not order rested on (removals, resizes, side flips)."""

    last_price: float | None
    liquidation_price: float | None
    mark_price: float | None
    stop_loss: float | None
    take_profit: float | None
    missing: int | None
    exchange_side: str | None
    exchange_contracts: float | None
    previous_amount: float | None
    previous_entry_price: float | None
    price_at_removal: float | None


class Event(TypedDict):
    """One change of the book, as ``manager.events`` lists it."""

    seq: int
    time: datetime
    symbol: str
    kind: EventKind
    reason: EventReason | str
    pnl: float | None
    position: EventPosition
    evidence: EventEvidence | None
    #: The client order id of the order behind the change (clients that take them).
    order_id: str | None


def _to_json(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # JSON has no NaN or infinity; an event never holds one unless a caller assigned it.
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _to_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"event field {where} cannot be written as JSON: {value!r}")


def event_to_json(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with only JSON types: times as ISO 8601 text, non-finite floats as None.

    ``json.dumps(event_to_json(e))`` never fails for an event of ``manager.events``; every field
    is carried over, including fields added to events after this version.
    """
    if not isinstance(event, Mapping):
        raise TypeError(f"event must be a mapping, got {event!r}")
    return {str(k): _to_json(v, str(k)) for k, v in event.items()}


#: Fields that hold times, by where they are in an event.
_TIME_FIELDS = {"time", "entry_time", "last_pnl_time"}


def _from_json(value: Any, key: str) -> Any:
    if isinstance(value, str) and key in _TIME_FIELDS:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _from_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v, key) for v in value]
    return value


def event_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """An event dict from :func:`event_to_json`'s form (times become ``datetime`` again)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a mapping, got {data!r}")
    return {k: _from_json(v, k) for k, v in data.items()}
