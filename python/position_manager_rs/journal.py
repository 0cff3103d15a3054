"""Read a journal: the events and positions that managers wrote with ``journal=``.

``Journal(url)`` opens a journal read-only — a file path or ``sqlite:///path`` (SQLite), or a
``postgresql://`` URL, completed as ``psql`` completes it (``PG*`` variables, ``~/.pgpass``,
service files) — and answers across every account in it::

    from position_manager_rs import Journal

    with Journal("journal.db") as journal:
        journal.accounts()                                    # who writes here
        journal.open_positions(account="main").to_pandas()    # the book, attributes included
        journal.closed_positions(since=datetime(2025, 3, 1))  # what closed, P/L and reason
        journal.events(symbol="BTC/USDT:USDT", kind="removed")
        journal.reopen_holds(account="main")                  # symbols not to open again yet
        journal.closing_positions(account="main")             # closes no list has confirmed
        journal.tombstones(account="main")                    # removed or ended, restorable
        journal.orders_in_flight(account="main")              # sent, outcome not yet known

Every query returns :class:`Records`: a ``list`` of dicts with a ``to_pandas()`` method. Times
are naive local ``datetime`` objects, as in ``manager.events``; ``since``/``until`` take the
same (an aware ``datetime`` is converted to local time first). See docs/journal.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from os import PathLike
from types import TracebackType
from typing import TYPE_CHECKING

from ._core import JournalError, _JournalReader

if TYPE_CHECKING:
    import pandas

__all__ = ["Journal", "JournalError", "Records"]

_EPOCH = datetime(1970, 1, 1)


class Records(list):
    """Query results: a list of dicts, one per row, with :meth:`to_pandas`."""

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a ``pandas.DataFrame`` (needs pandas); nested dicts stay as values."""
        import pandas

        return pandas.DataFrame.from_records(list(self))


def _micros(name: str, value: datetime | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(
            f"{name} must be a datetime or None, got {value!r} ({type(value).__name__})"
        )
    if value.tzinfo is not None:
        value = value.astimezone().replace(tzinfo=None)
    return (value - _EPOCH) // timedelta(microseconds=1)


def _name(name: str, value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {value!r} ({type(value).__name__})")
    return value


def _limit(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"limit must be an int or None, got {value!r} ({type(value).__name__})")
    if not 0 <= value <= 2**62:
        raise ValueError(f"limit must be an int from 0 to 2**62, got {value!r}")
    return value


def _kinds(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    kinds = [value] if isinstance(value, str) else list(value)
    for k in kinds:
        if not isinstance(k, str):
            raise TypeError(f"kind must be a str or an iterable of str, got {value!r}")
    return kinds


class Journal:
    """A read-only view of a journal across accounts (see the module documentation)."""

    def __init__(self, url: str | PathLike[str]) -> None:
        self._reader = _JournalReader(url)

    @property
    def url(self) -> str:
        """The database, spelt as ``Journal(url)`` accepts it: ``sqlite:///`` and the file's
        path (``sqlite:////abs/j.db``; a relative path stays relative), or the PostgreSQL URL
        with its passwords replaced by ``***`` (give the password again to reopen it, or keep
        it in ``PGPASSWORD`` / ``~/.pgpass``, which a URL without one reads)."""
        return self._reader.url

    @property
    def schema_version(self) -> int:
        """The journal's schema version (docs/journal.md, Schema)."""
        return self._reader.schema_version

    def accounts(self) -> Records:
        """Every account: ``account``, ``last_seq``, ``open_positions``, ``writer``,
        ``created_at``, ``updated_at``."""
        return Records(self._reader.accounts())

    def events(
        self,
        account: str | None = None,
        symbol: str | None = None,
        kind: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Records:
        """Events, oldest first: the fields of ``manager.events`` plus ``account`` and
        ``attributes`` (the bot's attributes of the position then, or None).

        An account's events come in the order its manager recorded them (``seq``), whatever
        their ``time`` says (a DST fall-back gives an hour's later events earlier times);
        several accounts' events are merged by time, each account's order kept. ``symbol``
        also matches hedge-mode keys (``SYMBOL@long``); ``kind`` is one kind or several (an
        empty list selects none); ``since`` (inclusive) and ``until`` (exclusive) select by
        each event's own ``time``; ``limit`` keeps the newest (the last recorded).
        """
        return Records(
            self._reader.events(
                _name("account", account),
                _name("symbol", symbol),
                _kinds(kind),
                _micros("since", since),
                _micros("until", until),
                _limit(limit),
            )
        )

    def closed_positions(
        self,
        account: str | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Records:
        """Positions that left the book, oldest first (in the order recorded, as
        :meth:`events`; ``limit`` keeps the last recorded): ``kind`` ``closed`` (by the
        manager, with its ``pnl``) or ``removed`` (closed outside it: liquidation, a stop on
        the exchange, by hand), with ``reason``, the position's last fields and the bot's
        ``attributes``.

        An end that a later event took back is left out: a ``closed`` followed (as the key's
        next event of its life) by ``close_unconfirmed``, or a ``closed`` or ``removed``
        followed by ``restored`` (a list showed the very position again, so it lived on); and a
        side flip's ``removed`` (reason ``side_flipped``) that a flip back undid (the side the
        flip brought removed in turn and this position ``restored`` with reason
        ``side_flipped``: the flip undone). :meth:`events` still shows them all."""
        return Records(
            self._reader.closed_positions(
                _name("account", account),
                _name("symbol", symbol),
                _micros("since", since),
                _micros("until", until),
                _limit(limit),
            )
        )

    def open_positions(self, account: str | None = None) -> Records:
        """The tracked positions as last journaled: ``account``, ``symbol``, every position
        field, ``attributes``, ``listed`` (what the exchange last listed for it: ``side``,
        ``contracts``, ``entry_price``; ``None`` before a list showed its entry),
        ``unlisted_fills`` (what the manager's own orders did to it that no list has shown
        yet: ``{"open": bool, "sizes_before": [...]}``; ``None`` when nothing, and in a journal
        older than schema version 7), ``updated_seq``, ``updated_at``."""
        return Records(self._reader.open_positions(_name("account", account)))

    def reopen_holds(self, account: str | None = None) -> Records:
        """The re-open holds (``reopen_hold_seconds``) as last journaled: ``account``,
        ``symbol`` (the book key), ``held_since`` (when the hold started, a naive local
        ``datetime``). A hold is over ``reopen_hold_seconds`` after ``held_since``; the
        manager drops those that are over the next time it writes its holds or starts."""
        return Records(self._reader.reopen_holds(_name("account", account)))

    def closing_positions(self, account: str | None = None) -> Records:
        """The closes awaiting confirmation: positions the manager closed (its client said so)
        that no position list has shown gone yet. A restarted manager puts each back; its first
        list confirms it (the position it ended then kept as a tombstone, see
        :meth:`tombstones`) or tracks the very position again (``close_unconfirmed``).
        Each row: ``account``, ``symbol``, every position field as at the close, ``attributes``,
        ``order_id`` (the close order's client id when the client takes them; ``None``
        otherwise, and before schema version 7), ``closed_seq`` (the ``closed`` event's
        ``seq``), ``closed_at``; oldest first. A journal
        older than schema version 3 has none."""
        return Records(self._reader.closing_positions(_name("account", account)))

    def tombstones(self, account: str | None = None) -> Records:
        """The tombstones: positions removed as closed outside the manager, and positions the
        manager's own closes ended once a list confirmed them, which a restarted manager
        restores (same state and attributes) if the exchange lists the very same position
        again. Each row: ``account``, ``symbol``, every position field as at the removal,
        ``attributes``, ``listed`` (what the exchange last listed for it: ``side``,
        ``contracts``, ``entry_price``; ``None`` when unknown), ``own_end`` (``True`` for a
        position the manager's own order ended: a list showing it again may lag the close, so
        it is restored only once ``outcome_confirmations`` lists show it; ``False`` in a
        journal before schema version 8), ``doubtful`` (``True`` for a position whose end
        failed reads or lagging lists also show: a list showing it on its side with more
        contracts restores it, added to; ``False`` before schema version 10),
        ``removed_seq`` (the ``removed`` event's
        ``seq``; otherwise the last event's ``seq`` when the row was written), ``removed_at``;
        oldest first. The manager drops those older than
        ``tombstone_ttl_seconds`` or beyond ``tombstone_limit`` when it next starts."""
        return Records(self._reader.tombstones(_name("account", account)))

    def orders_in_flight(self, account: str | None = None) -> Records:
        """The orders in flight: orders a manager sent whose outcome it has not taken in yet
        (written before each order goes out, deleted once its outcome is known). A manager
        restarted over the journal takes each back as an order with an unknown outcome and
        sends nothing more for its key until the exchange tells. Each row: ``account``,
        ``symbol`` (the book key), ``kind`` (``open``, ``close``, ``scale_in``, ``scale_out``),
        ``client_order_id`` (``None`` when the client takes none), ``sent_at``, ``intent`` (a
        dict: what the order was meant to do — an open's ``side``, ``amount``, ``leverage``,
        ``stop_loss_percentage``, ``price``; a change's ``op``, ``before``, ``reason``,
        ``price``, ``target_bit``); by account and key. A journal older than schema version 6
        has none."""
        return Records(self._reader.orders_in_flight(_name("account", account)))

    @contextmanager
    def snapshot(self) -> Iterator[Journal]:
        """Makes the queries inside the ``with`` block read one committed state of the journal.

        Without it every query reads the journal as it is at that moment, so a manager writing
        meanwhile may commit between two of them (the events read before a close, the book
        after it). Inside it, what managers commit is not seen until the block ends::

            with journal.snapshot():
                events = journal.events(account="main")
                book = journal.open_positions(account="main")  # the same moment as the events

        Keep the block short: PostgreSQL holds back the cleanup of old row versions and SQLite
        the checkpoint of its write-ahead log while it is open. A snapshot inside another is a
        ValueError.
        """
        self._reader._begin_snapshot()
        try:
            yield self
        finally:
            self._reader._end_snapshot()

    def close(self) -> None:
        """Closes the connection (queries then raise ValueError)."""
        self._reader.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({self.url!r})"
