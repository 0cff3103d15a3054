"""``os.fork()``: a forked child refuses the managers (and journal readers, iterators, views) its
parent made, at once and with a clear ``RuntimeError``, whatever lock a parent thread held at the
fork; it builds and uses managers of its own; and it never disturbs the parent (its journal, its
PostgreSQL session, its save directory's lock, its exit).

Each scenario runs in a fresh interpreter (``run``), which forks; a child is waited for with a
deadline and killed after it (``wait_child``), so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from journal_helpers import journal_url

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]

TESTS = Path(__file__).resolve().parent

# Shared by every scenario: the child reports through ``report`` (one JSON line on stdout),
# the parent waits for it with ``wait_child``.
PRELUDE = f"""
import gc, json, logging, os, signal, sys, threading, time, warnings
sys.path.insert(0, {str(TESTS)!r})
warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
from position_manager_rs import PositionManager

def wait_child(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"

def refused(call):
    # True when the call raises the fork RuntimeError (at once: a hang is the parent's deadline).
    try:
        call()
    except RuntimeError as e:
        return "cannot be used in the forked child process" in str(e)
    except Exception as e:
        return repr(e)
    return False

def report(tag, value):
    print(tag + " " + json.dumps(value), flush=True)

def busy_book(count):
    # A manager tracking `count` positions (logging off), for threads to cycle and read.
    from helpers_clients import FakeExchange, exchange_entry, make_position
    logging.disable(logging.CRITICAL)
    syms = [f"C{{i}}/USDT:USDT" for i in range(count)]
    client = FakeExchange([exchange_entry(s) for s in syms])
    for s in syms:
        client.prices[s] = 100.2
    pm = PositionManager(client, 0.02, ticker_retry_delays=())
    for s in syms:
        pm.positions[s] = make_position(s)
    return syms, pm
"""


def run(code: str, timeout: float = 120, env: dict[str, str] | None = None) -> dict[str, object]:
    """Runs the scenario ``code`` in a fresh interpreter; returns what it reported
    (``report(tag, value)`` lines), with its exit code under ``rc`` and its stderr under
    ``stderr``."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the scenario hung ({timeout} s): {e.stdout!r} {e.stderr!r}")
    out: dict[str, object] = {"rc": done.returncode, "stderr": done.stderr}
    for line in done.stdout.splitlines():
        tag, _, value = line.partition(" ")
        if value:
            out[tag] = json.loads(value)
    return out


def test_a_child_refuses_the_parents_manager_while_a_journal_write_holds_its_lock(
    tmp_path: Path,
) -> None:
    # Another process holds SQLite's write lock, so a parent thread's open_position waits inside
    # its journal write (the journal writer's lock held) when the main thread forks.
    journal = tmp_path / "j.db"
    got = run(
        f"""
        import subprocess
        from position_manager_rs.paper import PaperExchange
        logging.disable(logging.CRITICAL)
        J = {str(journal)!r}
        paper = PaperExchange(seed=1)
        pm = PositionManager(paper, 0.02, clock=paper.clock, ticker_retry_delays=(),
                             journal=J, account="parent")
        assert pm.open_position("BTC/USDT:USDT", "BUY", 100, 10)
        cycle = pm.update_positions()
        holder = subprocess.Popen([sys.executable, "-c",
            "import sqlite3, time; c = sqlite3.connect(%r, isolation_level=None); "
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(2); "
            "c.execute('COMMIT')" % J], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline() == "locked\\n"
        t = threading.Thread(target=pm.open_position, args=("ETH/USDT:USDT", "BUY", 100, 10))
        t.start()
        time.sleep(0.5)
        report("writing", t.is_alive())  # still inside its journal write
        pid = os.fork()
        if pid == 0:
            try:
                t0 = time.monotonic()
                r = {{
                    "journal_status": refused(lambda: pm.journal_status),
                    "get_all_positions": refused(pm.get_all_positions),
                    "positions[]": refused(lambda: pm.positions["BTC/USDT:USDT"]),
                    "open_position": refused(
                        lambda: pm.open_position("SOL/USDT:USDT", "BUY", 100, 10)),
                    "close_position": refused(lambda: pm.close_position("BTC/USDT:USDT")),
                    "journal_checkpoint": refused(pm.journal_checkpoint),
                    "update_positions": refused(pm.update_positions),
                    "iterator": refused(lambda: next(cycle)),
                    "events": refused(lambda: pm.events),
                    "save_state": refused(lambda: pm.save_state(J + ".state.json")),
                }}
                r["repr"] = repr(pm)
                r["seconds"] = time.monotonic() - t0
                # A manager of the child's own, with a client and a journal of its own, works.
                own = PaperExchange(seed=2)
                mine = PositionManager(own, 0.02, clock=own.clock,
                                       ticker_retry_delays=(), journal=J + ".child.db")
                r["own_open"] = mine.open_position("SOL/USDT:USDT", "BUY", 100, 10)
                r["own_positions"] = sorted(mine.get_all_positions())
                report("child", r)
            finally:
                os._exit(0)
        report("child_exit", wait_child(pid, 20))
        t.join(20)
        holder.wait(20)
        pm.open_position("XRP/USDT:USDT", "BUY", 100, 10)
        status = pm.journal_status
        report("parent", {{"fenced": status["fenced"], "failing": status["failing"],
                           "events": [(e["seq"], e["kind"], e["symbol"]) for e in pm.events]}})
        from position_manager_rs.journal import Journal
        with Journal(J) as j:
            report("journal", [(e["seq"], e["kind"], e["symbol"]) for e in j.events("parent")])
        """
    )
    assert got["writing"] is True, got
    assert got["child_exit"] == 0, got
    child = got["child"]
    assert isinstance(child, dict), got
    for call, ok in child.items():
        if call not in ("repr", "seconds", "own_open", "own_positions"):
            assert ok is True, (call, child)
    assert "unusable in the forked child process" in child["repr"], child
    assert child["seconds"] < 5, child  # it hung for ever
    assert child["own_open"] is True and child["own_positions"] == ["SOL/USDT:USDT"], child
    parent = got["parent"]
    assert isinstance(parent, dict)
    assert parent["fenced"] is False and parent["failing"] is False, parent
    symbols = [s for _, _, s in parent["events"]]
    assert symbols == ["BTC/USDT:USDT", "ETH/USDT:USDT", "XRP/USDT:USDT"], parent
    assert got["journal"] == parent["events"], got


def test_children_refuse_the_parents_manager_while_a_thread_cycles_a_large_book() -> None:
    # A monitor thread cycles a large book (the book's lock held while each plan is applied)
    # while the main thread forks children; each must refuse the parent's manager at once, and
    # can build and cycle a manager of its own.
    got = run(
        """
        import faulthandler
        from helpers_clients import FakeExchange, exchange_entry, make_position
        syms, pm = busy_book(3000)
        stop = False
        def monitor():
            while not stop:
                list(pm.update_positions())
        t = threading.Thread(target=monitor, daemon=True)
        t.start()
        time.sleep(0.5)
        results = []
        for n in range(12):
            time.sleep(0.013 * (n % 4))
            pid = os.fork()
            if pid == 0:
                faulthandler.dump_traceback_later(8, exit=True)  # where a hang is
                try:
                    r = [refused(pm.get_all_positions), refused(lambda: len(pm.positions)),
                         refused(lambda: pm.modify_position_targets(syms[0], new_stop_loss=1.0)),
                         refused(lambda: pm.events), refused(pm.get_open_positions_count)]
                    # A client of its own: the parent's may be locked by the monitor thread.
                    own = FakeExchange([exchange_entry(syms[0])])
                    own.prices[syms[0]] = 100.2
                    mine = PositionManager(own, 0.02, ticker_retry_delays=())
                    mine.positions[syms[0]] = make_position(syms[0])
                    list(mine.update_positions())
                    r.append(sorted(mine.get_all_positions()) == [syms[0]])
                    os._exit(0 if all(x is True for x in r) else 3)
                finally:
                    os._exit(4)
            results.append(wait_child(pid, 10))
        stop = True
        t.join(30)
        report("children", results)
        """
    )
    assert got["children"] == [0] * 12, got


def test_a_child_reads_the_parents_positions_or_is_told_why_never_hangs() -> None:
    # A monitor thread cycles the book and two threads read the positions' fields, so a
    # position's lock is often held (by the core, detached, or by a reader waiting for the
    # interpreter) when the main thread forks. A child reading the parent's Position objects
    # gets each field, or, for one whose lock a parent thread held at the fork, a RuntimeError
    # within about a second that says so (and a repr that does not raise) -- never a hang.
    # (Before: 5 of 40 children hung for ever.)
    got = run(
        """
        import faulthandler
        syms, pm = busy_book(200)
        held = [pm.get_position(s) for s in syms]
        stop = False
        def monitor():
            while not stop:
                list(pm.update_positions())
        def reader():
            while not stop:
                for p in held:
                    p.amount
        threads = [threading.Thread(target=f, daemon=True) for f in (monitor, reader, reader)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        results = []
        for n in range(60):
            time.sleep(0.002 * (n % 5))
            pid = os.fork()
            if pid == 0:
                faulthandler.dump_traceback_later(20, exit=True)  # where a hang is
                try:
                    refusals = 0
                    for p in held:
                        try:
                            assert p.amount > 0 and p.symbol in syms and str(p)
                        except RuntimeError as e:
                            assert "its lock is held in the forked child process" in str(e), e
                            assert "  " not in str(e), e
                            assert repr(p).startswith("<Position of process "), repr(p)
                            refusals += 1
                    os._exit(10 + min(refusals, 9))
                finally:
                    os._exit(4)
            results.append(wait_child(pid, 8))
        stop = True
        for t in threads:
            t.join(30)
        report("children", results)
        """,
        timeout=170,
    )
    children = got["children"]
    assert isinstance(children, list) and len(children) == 60, got
    # 10 + how many of the 200 positions were refused: a cycle holds one lock at a time, and
    # each reader one.
    assert all(c in (10, 11, 12, 13) for c in children), got


def test_a_child_saves_with_its_own_manager_while_a_parent_save_waited_at_the_fork(
    tmp_path: Path,
) -> None:
    # A parent thread is inside save_state(path), holding the per-target save lock while it waits
    # for the directory's flock (held here by the parent's main thread), when the main thread
    # forks. The child refuses the parent's manager and saves to the same path with its own.
    state = tmp_path / "state.json"
    got = run(
        f"""
        import fcntl
        from helpers_clients import FakeExchange, make_position
        S = {str(state)!r}
        pm = PositionManager(FakeExchange(), 0.02, ticker_retry_delays=())
        pm.positions["A/USDT:USDT"] = make_position("A/USDT:USDT")
        held = os.open(os.path.dirname(S), os.O_RDONLY)
        fcntl.flock(held, fcntl.LOCK_EX)
        t = threading.Thread(target=pm.save_state, args=(S,))
        t.start()
        time.sleep(0.3)
        report("saving", t.is_alive())  # waiting for the directory's lock
        pid = os.fork()
        if pid == 0:
            try:
                r = {{"refused": refused(lambda: pm.save_state(S))}}
                mine = PositionManager(FakeExchange(), 0.02, ticker_retry_delays=())
                mine.positions["B/USDT:USDT"] = make_position("B/USDT:USDT")
                t0 = time.monotonic()
                r["saved"] = mine.save_state(S)
                r["seconds"] = time.monotonic() - t0
                report("child", r)
            finally:
                os._exit(0)
        fcntl.flock(held, fcntl.LOCK_UN)
        report("child_exit", wait_child(pid, 20))
        t.join(20)
        t0 = time.monotonic()
        report("parent", {{"saved": pm.save_state(S), "seconds": time.monotonic() - t0}})
        """
    )
    assert got["saving"] is True, got
    assert got["child_exit"] == 0, got
    child = got["child"]
    assert isinstance(child, dict), got
    assert child["refused"] is True and child["saved"] == 1, child
    assert child["seconds"] < 2.5, child
    parent = got["parent"]
    assert isinstance(parent, dict)
    assert parent["saved"] == 1 and parent["seconds"] < 2.5, parent


def test_forked_pool_workers_do_not_keep_the_save_directory_locked(tmp_path: Path) -> None:
    # A fork Pool with maxtasksperchild=1 forks replacement workers from its own thread while
    # the main loop saves; a worker forked during a save shared the directory lock's
    # descriptor and kept the directory locked: every later save waited 3 s and warned.
    state = tmp_path / "state.json"
    got = run(
        f"""
        import multiprocessing as mp
        from helpers_clients import FakeExchange, make_position
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        def indicator(x):
            time.sleep(0.001)
            return x
        if __name__ == "__main__":
            S = {str(state)!r}
            pm = PositionManager(FakeExchange(), 0.02, ticker_retry_delays=())
            for i in range(10):
                pm.positions[f"C{{i}}/USDT:USDT"] = make_position(f"C{{i}}/USDT:USDT")
            pool = mp.get_context("fork").Pool(2, maxtasksperchild=1)
            work = pool.map_async(indicator, range(400), chunksize=1)
            saves = 0
            while not work.ready():
                pm.save_state(S)
                saves += 1
            times = []
            for _ in range(3):
                t0 = time.monotonic()
                pm.save_state(S)
                times.append(time.monotonic() - t0)
            pool.terminate()
            pool.join()
            report("saves", {{"during": saves, "after": times}})
        """
    )
    assert "saves" in got, got
    saves = got["saves"]
    assert isinstance(saves, dict), got
    assert saves["during"] > 10, saves  # forks really happened during saves
    assert max(saves["after"]) < 1.5, saves  # each waited DIR_LOCK_WAIT, 3 s
    assert "stays locked by another process" not in str(got["stderr"]), got["stderr"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_parents_journal_and_session_survive_a_child_that_drops_its_copies(
    kind: str, tmp_path: Path
) -> None:
    # The child refuses to write the parent's account (it wrote as the parent itself: same
    # writer epoch, the parent's later events dropped as duplicates) and to read through the
    # parent's reader; freeing its copies at its normal exit must not close or end the
    # parent's connections (a PostgreSQL terminate message on the shared socket ended the
    # parent's session).
    url = journal_url(kind, tmp_path, "fork")
    got = run(
        f"""
        from position_manager_rs.paper import PaperExchange
        from position_manager_rs.journal import Journal
        logging.disable(logging.CRITICAL)
        URL = {url!r}
        paper = PaperExchange(seed=1)
        pm = PositionManager(paper, 0.02, clock=paper.clock, ticker_retry_delays=(),
                             journal=URL, account="parent")
        assert pm.open_position("BTC/USDT:USDT", "BUY", 10, 2)
        reader = Journal(URL)
        before = reader.events("parent")
        pid = os.fork()
        if pid == 0:
            r = {{"open": refused(lambda: pm.open_position("ETH/USDT:USDT", "BUY", 10, 2)),
                  "scale": refused(lambda: pm.scale_in_position("BTC/USDT:USDT", 1, 100)),
                  "read": refused(lambda: reader.events("parent")),
                  "close_reader": refused(reader.close)}}
            report("child", r)
            del pm, reader
            gc.collect()
            sys.exit(0)  # a normal exit: finalization frees whatever is left
        report("child_exit", wait_child(pid, 20))
        t0 = time.monotonic()
        opened = pm.open_position("SOL/USDT:USDT", "BUY", 10, 2)
        closed = pm.close_position("BTC/USDT:USDT")
        status = pm.journal_status
        report("parent", {{"opened": opened, "closed": closed is not None,
                           "seconds": time.monotonic() - t0,
                           "fenced": status["fenced"], "failing": status["failing"],
                           "queued": status["queued_events"],
                           "events": [(e["seq"], e["kind"], e["symbol"]) for e in pm.events]}})
        report("reader", {{"before": len(before),
                           "after": [(e["seq"], e["kind"], e["symbol"])
                                     for e in reader.events("parent")]}})
        """
    )
    assert got["child_exit"] == 0, got
    assert got["child"] == {"open": True, "scale": True, "read": True, "close_reader": True}, got
    parent = got["parent"]
    assert isinstance(parent, dict), got
    assert parent["opened"] is True and parent["closed"] is True, parent
    assert parent["seconds"] < 5, parent
    assert (parent["fenced"], parent["failing"], parent["queued"]) == (False, False, 0), parent
    assert [(k, s) for _, k, s in parent["events"]] == [
        ("opened", "BTC/USDT:USDT"),
        ("opened", "SOL/USDT:USDT"),
        ("closed", "BTC/USDT:USDT"),
    ], parent
    # The parent's reader still reads (its session was not ended), and the journal holds
    # exactly the parent's events.
    reader = got["reader"]
    assert isinstance(reader, dict), got
    assert reader["before"] == 1 and reader["after"] == parent["events"], got


def test_an_os_fork_child_exits_at_once_while_a_parent_thread_is_mid_call() -> None:
    # Another thread is inside update_positions() (its client waits) at the fork; the child,
    # which does not use the manager, exits normally (atexit runs): it must not wait for that
    # thread, which does not exist in it (it waited 30 s and logged an ERROR).
    got = run(
        """
        from position_manager_rs.paper import PaperExchange
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        class Slow(PaperExchange):
            def get_tickers(self, symbols):
                time.sleep(3)
                return super().get_tickers(symbols)
        paper = Slow(seed=1)
        pm = PositionManager(paper, 0.02, clock=paper.clock, ticker_retry_delays=())
        pm.open_position("BTC/USDT:USDT", "BUY", 100, 10)
        t = threading.Thread(target=lambda: list(pm.update_positions()))
        t.start()
        time.sleep(0.5)
        report("cycling", t.is_alive())
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            sys.exit(0)
        code = wait_child(pid, 15)
        report("child", {"exit": code, "seconds": time.monotonic() - t0})
        t.join(20)
        """
    )
    assert got["cycling"] is True, got
    child = got["child"]
    assert isinstance(child, dict), got
    assert child["exit"] == 0 and child["seconds"] < 5, child  # it waited 30 s
    assert "manager call" not in str(got["stderr"]), got["stderr"]


def test_a_child_freeing_its_copies_leaves_the_parents_postgresql_sessions(tmp_path: Path) -> None:
    # The child only frees its copies of the parent's manager and reader (at its normal exit):
    # the parent's PostgreSQL sessions (the writer's and the reader's) must be the same server
    # processes afterwards (a terminate message sent on the shared socket ended them).
    url = journal_url("postgres", tmp_path, "forkdrop")
    sessions = (
        "select pid from pg_stat_activity where datname = current_database() "
        "and pid <> pg_backend_pid() order by pid"
    )
    got = run(
        f"""
        import subprocess
        from position_manager_rs.paper import PaperExchange
        from position_manager_rs.journal import Journal
        logging.disable(logging.CRITICAL)
        URL = {url!r}
        def sessions():
            return subprocess.run(["psql", URL, "-qXAt", "-c", {sessions!r}],
                                  capture_output=True, text=True, timeout=30).stdout.split()
        paper = PaperExchange(seed=1)
        pm = PositionManager(paper, 0.02, clock=paper.clock, ticker_retry_delays=(),
                             journal=URL, account="parent")
        assert pm.open_position("BTC/USDT:USDT", "BUY", 10, 2)
        reader = Journal(URL)
        reader.events("parent")
        before = sessions()
        pid = os.fork()
        if pid == 0:
            del pm, reader
            gc.collect()
            sys.exit(0)
        report("child_exit", wait_child(pid, 20))
        time.sleep(0.5)
        report("sessions", {{"before": before, "after": sessions()}})
        """
    )
    assert got["child_exit"] == 0, got
    s = got["sessions"]
    assert isinstance(s, dict), got
    assert len(s["before"]) == 2 and s["after"] == s["before"], s
