"""Fault injection: every client method raises, times out, answers ``None`` or garbage at random
(seeded) while a driver performs random operations. Proof of the guarantees in
docs/reliability.md:

* no exception reaches the caller (the bot);
* never a second close order for the same position: every ``close_position`` call and every
  reduce-only order is booked against the exchange-side position *instance* it reaches
  (``LedgerExchange``); one that reaches an instance the manager already closed is a failure;
* no position lost: a position leaves the book only when the fake exchange really does not hold
  it (a close succeeded, or it was closed outside the manager) or the driver itself untracked it;
  and with the faults switched off, one update cycle and one sync bring book and exchange into
  agreement;
* the book stays consistent through every accessor after every operation (``book_problems``).

A failure names its seed: ``PMRS_SEED=<seed> .venv/bin/python -m pytest
tests/test_fault_injection.py`` replays it. ``PMRS_LONG=1`` runs more seeds and operations.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Callable

import pytest
from helpers_clients import DEFAULT_PRICE, FakeExchange, Workers, make_manager, make_position
from reliability_helpers import (
    ALL_METHODS,
    LONG,
    FaultyExchange,
    LedgerExchange,
    book_problems,
    candles,
    seeds,
)

from position_manager_rs import Position, PositionManager
from position_manager_rs.testing import frozen_clock

# Long runs outlast the suite-wide pytest-timeout (120 s per test).
pytestmark = [pytest.mark.timeout(3600)] if LONG else []
UNIVERSE = [f"F{i:02d}/USDT:USDT" for i in range(12)]
OPERATIONS = 20_000 if LONG else 2_000
SEEDS = seeds(list(range(1, 21)) if LONG else [11, 12])
THREADED_SEEDS = seeds(list(range(100, 110)) if LONG else [101])


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    """The manager's clock stands still: a seed replays the same run however busy the machine
    is (whether a close reuses the cycle's list is decided by the manager's clock)."""
    with frozen_clock(datetime(2026, 1, 1, 12, 0, 0)):
        yield


WEIGHTS: dict[str, int] = {
    "update": 18,
    "open": 10,
    "close": 8,
    "scale_in": 5,
    "scale_out": 8,
    "sync": 5,
    "reconcile": 4,
    "targets": 6,
    "external_close": 4,
    "external_open": 3,
    "assign": 3,
    "delete": 3,
    "read": 5,
    "price": 14,
}


def quiet_candles(exchange: FakeExchange) -> Callable[..., Any]:
    """Realistic candles around each symbol's current price (cached per price)."""
    cache: dict[tuple[str, float], list[list[float]]] = {}

    def answer(symbol: str, timeframe: str = "1h", limit: int = 100) -> Any:
        with exchange._lock:
            price = round(exchange.prices.get(symbol, DEFAULT_PRICE), 2)
        key = (symbol, price)
        if key not in cache:
            cache[key] = candles(price, seed=zlib.crc32(f"{symbol}@{price}".encode()))
        return [list(row) for row in cache[key]]

    return answer


class Driver:
    """One seeded run of random operations against a ``FaultyExchange``."""

    def __init__(self, seed: int, operations: int) -> None:
        self.seed = seed
        self.operations = operations
        self.rng = random.Random(seed)
        self.exchange = FaultyExchange(seed=seed, rate=0.2)
        self.exchange.on_get_ohlcv = quiet_candles(self.exchange)
        self.exchange.faults_on = False
        for s in UNIVERSE[:5]:
            self.exchange.open(s, entry_price=DEFAULT_PRICE, leverage=5)
        self.pm = make_manager(
            self.exchange,
            missing_confirmations=1 + seed % 2,
            snapshot_reuse_seconds=(0.0, 5.0)[seed % 2],
        )
        self.op_events: list[tuple[str, str, str]] = []  # (symbol, kind, reason) of one op
        self.pm.on_event(lambda e: self.op_events.append((e["symbol"], e["kind"], e["reason"])))
        assert self.pm.sync_existing_positions() == 5
        self.exchange.faults_on = True
        self.history: list[str] = []
        self.op_counts: Counter[str] = Counter()
        self.violations: list[str] = []
        self.slowest = 0.0

    def where(self) -> str:
        tail = "\n  ".join(self.history[-12:])
        return (
            f"seed={self.seed} (replay: PMRS_SEED={self.seed}); last operations:\n  {tail}\n"
            f"violations so far: {self.violations[:5]}"
        )

    # -- operations ---------------------------------------------------------------------
    def operation(self, kind: str) -> tuple[str, str, Callable[[], Any]]:
        rng, pm, ex = self.rng, self.pm, self.exchange
        s = rng.choice(UNIVERSE)
        if kind == "update":
            if rng.random() < 0.1:

                def abandoned() -> Any:
                    it = pm.update_positions()
                    first = next(it, None)
                    it.close()
                    return [] if first is None else [first]

                return s, "update (abandoned after one)", abandoned
            return s, "update", lambda: list(pm.update_positions())
        if kind == "open":
            signal = rng.choice(["BUY", "SELL"])
            amount = rng.choice([0.5, 1.0, 2.0])
            use_limit = rng.random() < 0.35
            leverage = rng.choice([1, 3, 5, 10])
            fill = rng.choice([0.0, 0.5, 1.0])  # how much of a limit order fills

            def open_position() -> bool:
                ex.limit_fill = fill
                return pm.open_position(s, signal, amount, leverage, 0.05, use_limit=use_limit)

            return (
                s,
                f"open_position({s}, {signal}, {amount}, use_limit={use_limit}, fill={fill})",
                open_position,
            )
        if kind == "close":
            return s, f"close_position({s})", lambda: pm.close_position(s, "manual")
        if kind == "scale_in":
            return s, f"scale_in({s})", lambda: pm.scale_in_position(s, 0.5, DEFAULT_PRICE)
        if kind == "scale_out":
            amount = rng.choice([0.1, 0.3, 0.5, 1.0, 5.0])
            return s, f"scale_out({s}, {amount})", lambda: pm.scale_out_position(s, amount)
        if kind == "sync":
            return s, "sync", pm.sync_existing_positions
        if kind == "reconcile":
            return s, "reconcile", pm.reconcile_positions
        if kind == "targets":
            stop = DEFAULT_PRICE * rng.uniform(0.8, 1.2)
            if rng.random() < 0.5:
                return s, f"modify_targets({s})", lambda: pm.modify_position_targets(s, stop)
            return (
                s,
                f"safe_update_targets({s})",
                lambda: pm.safe_update_position_targets(s, new_stop_loss=stop),
            )
        if kind == "external_close":
            return s, f"exchange closes {s} by hand", lambda: ex.drop(s)
        if kind == "external_open":

            def external_open() -> None:
                with ex._lock:
                    if s in ex.positions:
                        return
                    price = ex.prices.get(s, DEFAULT_PRICE)
                ex.open(s, side=rng.choice(["long", "short"]), contracts=1.0, entry_price=price)

            return s, f"exchange opens {s} by hand", external_open
        if kind == "assign":

            def assign() -> None:
                # The bot (re-)adding a position it knows the exchange holds.
                with ex._lock:
                    held = ex.positions.get(s)
                    if held is None:
                        return
                    side, amount = held["side"], float(held["contracts"])
                pm.positions[s] = make_position(s, side=side, amount=amount, leverage=5)

            return s, f"positions[{s}] = Position (if held)", assign
        if kind == "delete":
            return s, f"positions.pop({s})", lambda: pm.positions.pop(s, None)
        if kind == "read":

            def read() -> None:
                for k, p in pm.positions.items():
                    assert p.symbol == k
                _ = pm.to_records(), repr(pm.positions), pm.events[-3:]

            return s, "read", read
        if kind == "price":
            with ex._lock:
                price = ex.prices.get(s, DEFAULT_PRICE)
            factor = rng.choice([rng.uniform(0.97, 1.03), 0.8, 1.25])
            new = min(max(price * factor, 50.0), 200.0)
            return s, f"price {s} -> {new:.2f}", lambda: ex.set_price(s, new)
        raise AssertionError(kind)

    # -- checks -------------------------------------------------------------------------
    def check_after(
        self,
        kind: str,
        target: str,
        before: dict[str, Position],
        result: Any,
        seconds: float,
    ) -> None:
        pm, ex = self.pm, self.exchange
        after = dict(pm.positions.items())
        held = ex.symbols()
        flips = {s for s, k, r in self.op_events if (k, r) == ("removed", "side_flipped")}
        for s, p in before.items():
            mine = kind in ("delete", "assign") and s == target
            # A side flip on the exchange ends the old position: it may be replaced or removed —
            # if the exchange really held the other side (the manager's word is not enough).
            last = ex.last.get(s)
            flipped = s in flips and last is not None and last.side != p.side
            if s not in after and not mine and s in held and not flipped:
                self.violations.append(
                    f"lost {s}: removed from the book by {self.history[-1]!r} while the exchange "
                    f"still holds it ({ex.positions.get(s)})"
                )
            if s in after and after[s] is not p and not (mine or flipped):
                self.violations.append(f"{s} replaced by another object in {self.history[-1]!r}")
        if kind == "update":
            for symbol, pnl, position in result:
                assert isinstance(pnl, float), (symbol, pnl)
                # (a position restored or re-imported at the cycle's start may close in it too)
                assert isinstance(position, Position) and position.symbol == symbol, symbol
        problems = book_problems(pm)
        if problems:
            self.violations.append(f"book inconsistent after {self.history[-1]!r}: {problems}")
        if ex.second_closes or ex.blind_second_closes:
            self.violations.append(
                f"second close order: {ex.second_closes} "
                f"(after a close whose answer was lost: {ex.blind_second_closes})"
            )
        ex.second_closes.clear()
        ex.blind_second_closes.clear()
        self.slowest = max(self.slowest, seconds)
        if seconds > 10.0:
            self.violations.append(f"{self.history[-1]!r} took {seconds:.1f} s")

    def run(self) -> None:
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]
        for i in range(self.operations):
            kind = self.rng.choices(kinds, weights)[0]
            target, text, call = self.operation(kind)
            self.history.append(f"#{i} {text}")
            before = dict(self.pm.positions.items())
            self.op_events.clear()
            t0 = time.perf_counter()
            try:
                result = call()
            except BaseException as e:
                raise AssertionError(
                    f"{type(e).__name__} reached the caller: {e}\n{traceback.format_exc()}\n"
                    f"{self.where()}"
                ) from e
            self.op_counts[kind] += 1
            self.check_after(kind, target, before, result, time.perf_counter() - t0)
            assert not self.violations, self.where()

    def converge(self) -> None:
        """Faults off: one cycle drops what the exchange no longer holds, one sync imports the
        rest; then book and exchange agree."""
        ex, pm = self.exchange, self.pm
        ex.faults_on = False
        for _ in range(2):  # missing_confirmations may be 2
            list(pm.update_positions())
        pm.sync_existing_positions()
        assert set(pm.positions) == ex.symbols(), (
            f"book and exchange disagree after convergence: only in book "
            f"{sorted(set(pm.positions) - ex.symbols())}, only on exchange "
            f"{sorted(ex.symbols() - set(pm.positions))}; {self.where()}"
        )
        assert not book_problems(pm), (book_problems(pm), self.where())


@pytest.mark.parametrize("seed", SEEDS)
def test_random_operations_under_faults_in_every_client_method(seed: int) -> None:
    driver = Driver(seed, OPERATIONS)
    from helpers_clients import run_with_timeout

    run_with_timeout(driver.run, timeout=300.0 if LONG else 60.0, what=f"driver seed={seed}")
    driver.converge()
    ex = driver.exchange
    # The run proved something: every method misbehaved in every way it can, and every
    # operation kind ran.
    faults_by_method = {m for m, _ in ex.fault_log}
    assert faults_by_method == set(ALL_METHODS), (sorted(set(ALL_METHODS) - faults_by_method), seed)
    assert set(driver.op_counts) == set(WEIGHTS), (driver.op_counts, seed)
    closes = [i for i in ex.instances if i.closing_orders]
    assert closes, "no closing order was ever sent"
    vanished_full_closes = [v for v in ex.vanished_closes if v[0] == "close_position"]
    assert not vanished_full_closes, (
        "close_position sent for a position the exchange did not hold",
        vanished_full_closes,
        driver.where(),
    )
    print(
        f"\nfault injection seed={seed}: {sum(driver.op_counts.values())} operations, "
        f"{sum(ex.fault_log.values())} faults injected "
        f"({dict(Counter(f for _, f in ex.fault_log.elements()))}), "
        f"{sum(i.closing_orders for i in ex.instances)} closing orders over "
        f"{len(ex.instances)} exchange positions, "
        f"{len(ex.manager_closed_instances())} closed by the manager, 0 second close orders, "
        f"{len(ex.unknown_outcome)} closes/reductions whose answer was lost, "
        f"{len(ex.vanished_closes)} orders for positions closed by hand, "
        f"slowest operation {driver.slowest * 1000:.0f} ms"
    )


# --------------------------------------------------------------------------- threads + faults

_MAY_STILL_REST = re.compile(r"^Open order (.+) for (.+) may still rest on the exchange; ")


@contextlib.contextmanager
def blocked_opens() -> Iterator[dict[str, str]]:
    """``{symbol: order id}`` of every open the manager warns may still rest on the exchange
    while the block runs (its key stays reserved until the order is shown gone)."""
    found: dict[str, str] = {}

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = _MAY_STILL_REST.match(record.getMessage())
            if match:
                found[match.group(2)] = match.group(1)

    handler = Catch(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield found
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize("seed", THREADED_SEEDS)
def test_threads_under_faults_raise_nothing_and_converge(seed: int) -> None:
    """Four threads of random operations under faults: nothing raises, nothing hangs (deadline
    joins), and once the faults stop the book converges to the exchange — except where a limit
    open's answer carried an id the exchange never issued (see ``blocked_opens``).

    Double close orders are *not* asserted here: two threads closing the same position at once
    can both send one (see ``test_two_concurrent_closes_send_one_close_order``)."""
    exchange = FaultyExchange(seed=seed, rate=0.15)
    exchange.faults_on = False
    for s in UNIVERSE[:6]:
        exchange.open(s, entry_price=DEFAULT_PRICE, leverage=5)
    pm = make_manager(exchange)
    pm.sync_existing_positions()
    exchange.faults_on = True
    per_thread = (3_000 if LONG else 250) // 4
    workers = Workers()
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def body(index: int) -> Callable[[], None]:
        driver = Driver.__new__(Driver)
        driver.rng = random.Random(seed * 100 + index)
        driver.pm, driver.exchange = pm, exchange
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]

        def run() -> None:
            for i in range(per_thread):
                kind = driver.rng.choices(kinds, weights)[0]
                _, text, call = driver.operation(kind)
                try:
                    call()
                except BaseException as e:
                    raise AssertionError(f"seed={seed} thread={index} #{i} {text}: {e!r}") from e
                with lock:
                    counts[kind] += 1

        return run

    for i in range(4):
        workers.spawn(f"faulty-{i}", body(i))
    workers.start()
    workers.join(240.0 if LONG else 60.0)
    exchange.faults_on = False
    with blocked_opens() as blocked:
        for _ in range(2):
            list(pm.update_positions())
        pm.sync_existing_positions()
    untracked = exchange.symbols() - set(pm.positions)
    assert not set(pm.positions) - exchange.symbols(), seed
    # The one exception, by design (rule 7): a limit open whose answer carried an id the client
    # garbled (``ORDER_GARBAGE``) keeps its symbol reserved, since the manager cannot prove that
    # order gone, so a position held there is not imported meanwhile. Only ids the exchange
    # never issued may do that: a real order's id is looked up once the faults stop.
    assert untracked <= set(blocked), (untracked, blocked, seed)
    assert all(order_id not in exchange.orders for order_id in blocked.values()), (blocked, seed)
    assert not book_problems(pm), (book_problems(pm), seed)
    assert sum(counts.values()) == 4 * per_thread


# --------------------------------------------------------------------------- focused cases


def test_a_lost_close_answer_is_checked_on_the_exchange_before_the_call_returns() -> None:
    """The close reached the exchange but its answer was lost (the client raised): before the
    call returns the manager reads the list, finds the position gone and reports the close (its
    P/L); a second close finds nothing tracked and sends nothing."""
    exchange = LedgerExchange()
    exchange.open("A", entry_price=DEFAULT_PRICE)
    pm = make_manager(exchange)
    pm.sync_existing_positions()

    def closes_then_raises(symbol: str) -> Any:
        exchange.execute_close(symbol)
        raise TimeoutError("read timed out after the order was accepted")

    exchange.on_close_position = closes_then_raises
    pnl = pm.close_position("A")
    assert isinstance(pnl, float), "resolved against the exchange: it closed"
    assert "A" not in pm.positions
    assert [e["kind"] for e in pm.events if e["symbol"] == "A"][-1] == "closed"
    exchange.on_close_position = None
    assert pm.close_position("A") is None  # nothing tracked: no order
    assert len(exchange.calls_of("close_position")) == 1
    assert not exchange.second_closes


def test_no_reduce_only_order_after_a_close_with_an_unknown_outcome() -> None:
    """The close executed but the client raised (answer lost): the close is resolved against the
    exchange before it returns, so a scale-out after it has nothing to reduce and sends no
    reduce-only order."""
    exchange = LedgerExchange()
    exchange.open("A", entry_price=DEFAULT_PRICE, contracts=1.0)
    pm = make_manager(exchange)
    pm.sync_existing_positions()

    def closes_then_raises(symbol: str) -> Any:
        exchange.execute_close(symbol)
        raise TimeoutError("read timed out after the order was accepted")

    exchange.on_close_position = closes_then_raises
    assert isinstance(pm.close_position("A"), float)
    assert pm.scale_out_position("A", 0.5) is None
    assert not exchange.second_closes, exchange.second_closes


def test_no_reduce_only_order_after_a_falsy_close_answer_that_did_close() -> None:
    exchange = LedgerExchange()
    exchange.open("A", entry_price=DEFAULT_PRICE, contracts=1.0)
    pm = make_manager(exchange)
    pm.sync_existing_positions()

    def closes_then_answers_none(symbol: str) -> Any:
        exchange.execute_close(symbol)
        return None  # the client swallowed a read timeout after the order was accepted

    exchange.on_close_position = closes_then_answers_none
    assert isinstance(pm.close_position("A"), float)  # a falsy answer is checked, not trusted
    assert "A" not in pm.positions
    assert pm.scale_out_position("A", 0.5) is None
    assert not exchange.second_closes, exchange.second_closes


def test_two_concurrent_closes_send_one_close_order() -> None:
    """Two closes of one position at once (the bot's and the update cycle's, two threads): one
    close order."""
    exchange = LedgerExchange()
    exchange.open("A", entry_price=DEFAULT_PRICE)
    pm = make_manager(exchange)
    pm.sync_existing_positions()
    inside, release = threading.Event(), threading.Event()

    def slow_close(symbol: str) -> Any:
        inside.set()
        release.wait(5.0)
        return exchange.execute_close(symbol)

    exchange.on_close_position = slow_close
    results: dict[str, Any] = {}
    workers = Workers()
    workers.spawn("first", lambda: results.setdefault("first", pm.close_position("A")))
    workers.threads[0].start()
    assert inside.wait(5.0)
    workers.spawn("second", lambda: results.setdefault("second", pm.close_position("A")))
    workers.threads[1].start()
    time.sleep(0.3)  # the second close has checked the exchange (A still listed) by now
    release.set()
    workers.join(10.0)
    n = len(exchange.calls_of("close_position"))
    assert n == 1 and not exchange.second_closes, (n, exchange.second_closes, results)


def test_faulty_exchange_is_deterministic_per_seed() -> None:
    """The same seed injects the same faults in the same order (failures are reproducible)."""

    def trace(seed: int) -> list[str]:
        ex = FaultyExchange(seed=seed, rate=0.5, timeout_sleep=(0.0, 0.0))
        ex.open("A")
        out = []
        for _ in range(60):
            try:
                out.append(type(ex.get_open_positions()).__name__)
            except Exception as e:
                out.append(type(e).__name__)
        return out

    assert trace(3) == trace(3)
    assert trace(3) != trace(4)


def test_no_exception_from_any_public_call_when_every_answer_is_garbage() -> None:
    """Every client method always misbehaves: every public manager call still returns."""
    exchange = FaultyExchange(seed=5, rate=1.0, budget=0.0005, timeout_sleep=(0.001, 0.002))
    exchange.faults_on = False
    exchange.open("A")
    pm: PositionManager = make_manager(exchange)
    pm.sync_existing_positions()
    pm.positions["B"] = make_position("B")
    exchange.faults_on = True
    calls: list[Callable[[], Any]] = [
        lambda: list(pm.update_positions()),
        pm.sync_existing_positions,
        pm.reconcile_positions,
        lambda: pm.close_position("A"),
        lambda: pm.open_position("C", "BUY", 1.0, 5),
        lambda: pm.open_position("D", "SELL", 1.0, 5, use_limit=True),
        lambda: pm.scale_in_position("A", 0.5, 100.0),
        lambda: pm.scale_out_position("B", 0.3),
        lambda: pm.modify_position_targets("A", 90.0, 120.0),
        lambda: pm.safe_update_position_targets("B", 90.0, 120.0),
    ]
    for _ in range(15):
        for call in calls:
            call()
    assert not book_problems(pm)


def test_a_scale_out_racing_a_close_sends_no_reduce_only_order_after_it() -> None:
    """The close executed on the exchange but its answer is still on the way; meanwhile the bot
    scales out of the same position: no reduce-only order may reach the closed position."""
    exchange = LedgerExchange()
    exchange.open("A", entry_price=DEFAULT_PRICE, contracts=1.0)
    pm = make_manager(exchange)
    pm.sync_existing_positions()
    executed, release = threading.Event(), threading.Event()

    def close_then_slow_answer(symbol: str) -> Any:
        done = exchange.execute_close(symbol)
        executed.set()
        release.wait(5.0)
        return done

    exchange.on_close_position = close_then_slow_answer
    workers = Workers()
    results: dict[str, Any] = {}
    workers.spawn("close", lambda: results.setdefault("close", pm.close_position("A")))
    workers.threads[0].start()
    assert executed.wait(5.0)
    workers.spawn(
        "scale-out", lambda: results.setdefault("scale-out", pm.scale_out_position("A", 0.3))
    )
    workers.threads[1].start()
    workers.threads[1].join(5.0)
    release.set()
    workers.join(10.0)
    assert not exchange.second_closes, exchange.second_closes
    assert "A" not in pm.positions


def test_a_close_racing_a_scale_out_in_flight_sends_no_second_order() -> None:
    """A scale-out has passed its checks and is waiting for its price; meanwhile a close of the
    same position runs to the end. The scale-out's reduce-only order must not follow the close
    to the closed position (and the close must not be sent while the scale-out is in flight —
    either way, one closing order per position at a time)."""
    exchange = LedgerExchange()
    exchange.open("A", entry_price=DEFAULT_PRICE, contracts=1.0)
    pm = make_manager(exchange)
    pm.sync_existing_positions()
    waiting, release = threading.Event(), threading.Event()

    def slow_ticker(symbol: str) -> Any:
        if threading.current_thread().name == "scale-out":
            waiting.set()
            release.wait(5.0)
        return {"symbol": symbol, "last": DEFAULT_PRICE}

    exchange.on_get_ticker = slow_ticker
    results: dict[str, Any] = {}
    workers = Workers()
    workers.spawn(
        "scale-out", lambda: results.setdefault("scale-out", pm.scale_out_position("A", 0.3))
    )
    workers.threads[0].start()
    assert waiting.wait(5.0)
    workers.spawn("close", lambda: results.setdefault("close", pm.close_position("A")))
    workers.threads[1].start()
    workers.threads[1].join(5.0)
    release.set()
    workers.join(10.0)
    assert not exchange.second_closes, (exchange.second_closes, results)


def test_a_cycle_does_not_close_a_re_added_position_on_a_list_older_than_it() -> None:
    """The update cycle fetched its list (S listed); while it works on another symbol, the bot
    closes S (it fills) and re-adds a Position for S from its own records. When the cycle
    reaches S, the list it holds predates both the close and the new entry: it must not be the
    evidence for another close order (one for S is already done)."""
    exchange = LedgerExchange()
    pm = make_manager(exchange)
    for s in ("T", "S"):
        exchange.open(s, entry_price=DEFAULT_PRICE, contracts=1.0)
        pm.positions[s] = make_position(s)
    exchange.set_price("S", 90.0)  # below the stop of any long S the bot re-adds

    def candles_then_bot_acts(symbol: str, **kwargs: Any) -> Any:
        if symbol == "T":
            exchange.on_get_ohlcv = None
            assert pm.close_position("S") is not None  # the bot's close fills
            pm.positions["S"] = make_position("S")  # and the bot re-adds S from its records
        return []

    exchange.on_get_ohlcv = candles_then_bot_acts
    list(pm.update_positions())
    assert not exchange.second_closes, exchange.second_closes
