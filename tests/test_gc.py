"""A dropped manager is freed by the garbage collector when the bot's objects point back to it.

Real bots build cycles through the manager all the time: `manager.on_event(self.handle)` (a
bound method of the bot that holds the manager), a closure, a client that points to the bot,
`position.bot = self`, an exit object that holds the manager. Each test builds one, drops it,
runs `gc.collect()` and checks that the manager (and the bot) are gone and, with a journal,
that the database's file descriptors are closed.
"""

from __future__ import annotations

import functools
import gc
import os
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers_clients import FakeExchange, exchange_entry, make_manager

from position_manager_rs import AdvancedExitStrategy, Position, PositionManager

SYMBOL = "BTC/USDT:USDT"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Bot:
    """A bot that holds its manager; `pattern` is how its objects point back to it."""

    def __init__(self, pattern: str, journal: Path | None) -> None:
        self.client = FakeExchange()
        self.client.positions[SYMBOL] = exchange_entry(SYMBOL, "long", 1.0, 100.0)
        options: dict[str, Any] = {}
        if journal is not None:
            options.update(journal=str(journal), account="a")
        exit_object: Any = None
        if pattern == "exit_object":
            exit_object = HoldingExit()
            options["advanced_exit_strategy"] = exit_object
        self.manager = make_manager(self.client, **options)
        self.manager.sync_existing_positions()
        if pattern == "bound_method":
            self.manager.on_event(self.handle)
        elif pattern == "closure":
            manager = self.manager
            manager.on_event(lambda event: manager)
        elif pattern == "client":
            self.client.bot = self  # type: ignore[attr-defined]
        elif pattern == "position":
            self.manager.positions[SYMBOL].bot = self
        elif pattern == "closed_position":
            position = self.manager.positions[SYMBOL]
            position.bot = self
            self.manager.close_position(SYMBOL)
            assert SYMBOL not in self.manager.positions
        elif pattern == "exit_object":
            exit_object.manager = self.manager
        elif pattern == "iterator":
            self.cycle = self.manager.update_positions()
            self.manager.on_event(self.handle)
        else:
            raise AssertionError(pattern)

    def handle(self, event: Any) -> None:
        pass


class HoldingExit(AdvancedExitStrategy):
    """A user's exit strategy object that holds the manager."""

    manager: PositionManager


PATTERNS = [
    "bound_method",
    "closure",
    "client",
    "position",
    "closed_position",
    "exit_object",
    "iterator",
]


def collected(make: Callable[[], Any]) -> tuple[weakref.ref[Any], weakref.ref[Any]]:
    """Builds a bot with `make`, drops it and collects; returns weak references to the bot and
    its manager."""
    bot = make()
    refs = (weakref.ref(bot), weakref.ref(bot.manager))
    del bot
    gc.collect()
    return refs


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_dropped_manager_in_a_cycle_is_collected(pattern: str) -> None:
    bot, manager = collected(lambda: Bot(pattern, None))
    assert manager() is None, f"{pattern}: the manager was not collected"
    assert bot() is None


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_collected_manager_closes_its_journal(pattern: str, tmp_path: Path) -> None:
    gc.collect()
    before = open_fds()
    for i in range(3):
        bot, manager = collected(functools.partial(Bot, pattern, tmp_path / f"j{i}.db"))
        assert manager() is None, f"{pattern}: the manager was not collected"
        assert bot() is None
    assert open_fds() == before


class MyPosition(Position):
    pass


@pytest.mark.parametrize("cls", [Position, MyPosition])
def test_an_assigned_position_pointing_back_to_the_bot_is_collected(cls: type[Position]) -> None:
    def make() -> Any:
        bot = Bot("client", None)
        del bot.client.bot  # type: ignore[attr-defined]
        position = cls(SYMBOL, "long", 100.0, 1.0, 1, 95.0, 115.0)
        position.bot = bot
        bot.manager.positions[SYMBOL] = position
        assert bot.manager.positions[SYMBOL] is position
        return bot

    bot, manager = collected(make)
    assert manager() is None
    assert bot() is None


def test_a_manager_without_a_cycle_is_freed_at_once(tmp_path: Path) -> None:
    """No collection needed: the manager and its journal go when the last reference does."""
    gc.collect()
    before = open_fds()
    gc.disable()
    try:
        client = FakeExchange()
        manager = make_manager(client, journal=str(tmp_path / "j.db"), account="a")
        ref = weakref.ref(manager)
        assert open_fds() > before
        del manager
        assert ref() is None
        assert open_fds() == before
    finally:
        gc.enable()


def test_the_manager_stays_usable_while_its_cycle_is_alive() -> None:
    """Collections while the bot is alive free nothing of it: positions keep their attributes,
    callbacks stay registered, the client keeps its state."""
    bot = Bot("bound_method", None)
    calls: list[Any] = []
    bot.manager.on_event(calls.append)
    bot.manager.positions[SYMBOL].bot = bot
    bot.client.bot = bot  # type: ignore[attr-defined]
    for _ in range(3):
        gc.collect()
    assert bot.manager.positions[SYMBOL].bot is bot
    assert bot.client.bot is bot
    bot.manager.close_position(SYMBOL)
    assert [e["kind"] for e in calls] == ["closed"]


def cycles_while_collecting(manager: PositionManager, seconds: float) -> list[BaseException]:
    """Runs update cycles on one thread and `gc.collect()` on another for `seconds`; returns
    what either raised. A deadlock fails (the threads are joined with a deadline)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def cycles() -> None:
        try:
            while not stop.is_set():
                for _ in manager.update_positions():
                    pass
                manager.get_all_positions()
        except BaseException as e:  # pragma: no cover - reported by the caller
            errors.append(e)

    def collections() -> None:
        try:
            while not stop.is_set():
                gc.collect()
        except BaseException as e:  # pragma: no cover - reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=cycles), threading.Thread(target=collections)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=20)
        assert not t.is_alive(), "deadlock between update cycles and the garbage collector"
    return errors


def test_collections_while_another_thread_runs_cycles() -> None:
    """One thread runs update cycles on a manager in a cycle while another collects in a loop:
    no deadlock, no error, and nothing of the live bot is cleared."""
    bot = Bot("position", None)
    bot.manager.on_event(bot.handle)
    for k in range(10):
        symbol = f"S{k}/USDT:USDT"
        bot.client.positions[symbol] = exchange_entry(symbol, "long", 1.0, 100.0)
    bot.manager.sync_existing_positions()
    for position in bot.manager.positions.values():
        position.bot = bot
    manager = bot.manager
    errors = cycles_while_collecting(manager, seconds=2.0)
    assert errors == []
    assert len(bot.manager.positions) == 11
    for position in bot.manager.positions.values():
        assert position.bot is bot
    bot_ref, manager_ref = weakref.ref(bot), weakref.ref(manager)
    del bot, manager, position
    gc.collect()
    assert manager_ref() is None
    assert bot_ref() is None


def test_a_cycle_is_collected_with_journal_writes_queued(tmp_path: Path) -> None:
    """The journal's database is locked by another connection, so its writes queue; the
    manager is collected anyway, its connection closed, and nothing hangs."""
    db = tmp_path / "j.db"
    gc.collect()
    bot = Bot("bound_method", db)
    # Another process: SQLite's locks do not separate two connections of one process that use
    # different copies of the library (Python's and the journal's).
    locker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"con = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "con.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None and locker.stdin is not None
    assert locker.stdout.readline().strip() == "locked"
    before = open_fds()
    try:
        for k in range(5):
            symbol = f"Q{k}/USDT:USDT"
            bot.manager.open_position(symbol, "BUY", 1, 1)
        status = bot.manager.journal_status
        assert status is not None and status["queued_events"] > 0
        bot_ref, manager_ref = weakref.ref(bot), weakref.ref(bot.manager)
        del bot
        gc.collect()
        assert manager_ref() is None
        assert bot_ref() is None
        assert open_fds() == before - 3  # the database, its -wal and -shm
    finally:
        locker.stdin.close()
        locker.wait(timeout=30)


def test_off_event_removes_one_registration() -> None:
    bot = Bot("bound_method", None)
    calls: list[str] = []

    class Listener:
        def handle(self, event: Any) -> None:
            calls.append(event["kind"])

    listener = Listener()
    bot.manager.on_event(listener.handle)
    bot.manager.on_event(listener.handle)
    bot.manager.close_position(SYMBOL)
    assert calls == ["closed", "closed"]
    # A new bound method object, equal to the registered ones.
    assert bot.manager.off_event(listener.handle) is True
    bot.manager.open_position(SYMBOL, "BUY", 1, 1)
    assert calls == ["closed", "closed", "opened"]
    assert bot.manager.off_event(listener.handle) is True
    assert bot.manager.off_event(listener.handle) is False
    assert bot.manager.off_event(print) is False
    bot.manager.close_position(SYMBOL)
    assert calls == ["closed", "closed", "opened"]
    # The bot's own registration is still there; removing it breaks the cycle by hand.
    assert bot.manager.off_event(bot.handle) is True


def test_off_event_with_an_eq_that_changes_the_registrations() -> None:
    manager = make_manager(FakeExchange())

    class Odd:
        def __call__(self, event: Any) -> None:
            pass

        def __eq__(self, other: object) -> bool:
            manager.on_event(print)
            return other is self

        __hash__ = object.__hash__

    odd = Odd()
    manager.on_event(odd)
    assert manager.off_event(odd) is True
    assert manager.off_event(odd) is False


def test_a_manager_in_a_collected_cycle_stays_safe_to_call() -> None:
    """A finalizer of an object in the cycle calls the manager while the collector frees the
    cycle (CPython runs a cycle's finalizers before it clears anything): the calls work."""
    results: list[Any] = []

    class Finalizing(Bot):
        def __del__(self) -> None:
            try:
                manager = self.__dict__.get("manager")
                if manager is not None:
                    results.append(len(manager.positions))
                    results.append(manager.off_event(print))
                    list(manager.update_positions())
            except Exception as e:  # any exception is fine, a crash is not
                results.append(e)

    bot = Finalizing("bound_method", None)
    ref = weakref.ref(bot.manager)
    del bot
    gc.collect()
    gc.collect()
    assert ref() is None
    # The finalizer ran and the manager answered: its one position, no such callback, and a
    # cycle that ran (an exception would be in the list).
    assert results == [1, False]


BUILD_UNDER_COLLECTIONS = """
import gc, sys
from position_manager_rs import Position, PositionManager
from position_manager_rs.paper import PaperExchange

class BotManager(PositionManager):
    pass

class BotPosition(Position):
    pass

paper = PaperExchange(seed=1)
gc.set_threshold(int(sys.argv[1]))  # a collection every few container allocations
kept = []
for i in range(1000):
    kept.append(PositionManager(paper, 0.02))
    kept.append(BotManager(paper, 0.02))
    kept.append(BotPosition("BTC/USDT:USDT", "long", 100.0, 1.0, 10, 95.0, 110.0))
print("built", len(kept))
"""


@pytest.mark.parametrize("threshold", [6, 7, 8, 12])
def test_a_collection_while_a_manager_is_being_built_does_not_crash(threshold: int) -> None:
    """`object.__new__` makes a manager's `__dict__` after the object is tracked and before its
    fields are written; a collection started by that allocation traversed the half-built
    manager and visited a null pointer: the interpreter died with SIGSEGV (found by an audit
    on 2026-12-07; with the default thresholds a bot building managers while holding other
    objects crashed within a few hundred). Frequent collections make that moment certain."""
    done = subprocess.run(
        [sys.executable, "-c", BUILD_UNDER_COLLECTIONS, str(threshold)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "built 3000"
