"""Property-based proofs (hypothesis): whatever the exchange client answers — any JSON-like value,
wrong types, missing keys, NaN/inf, strings for numbers, duplicates, non-dicts, huge lists, or an
exception — ``list(update_positions())``, ``sync_existing_positions()``, ``reconcile_positions()``
and ``close_position()`` never raise, and never remove a position the last well-formed snapshot
listed.

Definitions (from ``core/src/reconcile.rs``, ``Snapshot::from_entries``, and ``src/client.rs``):

* a position-list answer is **well-formed** when it is a list (or tuple) whose every entry is a
  dict with a non-empty ``str`` ``symbol``; anything else — a non-list, an exception, one entry
  that is not a dict or has no usable symbol — proves nothing about absence;
* an entry **really lists** a position when its ``contracts`` is a finite number (int or float,
  not bool) greater than zero and its ``side`` is ``'long'`` or ``'short'``. Zero-size, size-less
  and side-less "phantom" entries are deliberately *not* in the must-keep set: whether they count
  as presence is being changed (failure mode A7), and the property holds either way;
* **the property**, checked at every client call and after every operation (so at the moment of
  each removal): a tracked position may leave the book only if

  1. the client answered a ``close_position`` (or a reduce-only order) for it truthily since the
     previous observation (the manager closed it), or
  2. the most recent position-list answer was well-formed and did not really list the symbol
     with the position's side (absence — or, new with side flips, the exchange now reports the
     other side only), or
  3. the most recent answer really lists the symbol with the other side only (a side flip: the
     old position is over, whatever else the list contains).

  So a position the last well-formed snapshot really listed survives every malformed, failed or
  garbage answer that follows. The same rule bounds replacements by another object (only after a
  side flip).

CI runs a modest number of examples per property; ``PMRS_LONG=1`` runs thousands.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import pytest
from helpers_clients import make_manager, make_position
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reliability_helpers import LONG, book_problems, candles

from position_manager_rs import Position, PositionManager
from position_manager_rs.testing import frozen_clock

# Long runs outlast the suite-wide pytest-timeout (120 s per test).
pytestmark = [pytest.mark.timeout(3600)] if LONG else []


@pytest.fixture(autouse=True)
def _frozen_time() -> Iterator[None]:
    """The manager's clock stands still: the same answers give the same book however long each
    call takes (a busy machine must not change a decision, e.g. whether a close reuses the
    cycle's list)."""
    with frozen_clock(datetime(2026, 1, 1, 12, 0, 0)):
        yield


TRACKED = ["A/USDT:USDT", "B/USDT:USDT", "C/USDT:USDT"]
OTHER = ["D/USDT:USDT", "E/USDT:USDT"]

# CI: a fixed, modest set of examples (a green CI stays green); PMRS_LONG=1: thousands of fresh
# random examples per property (a failure prints the blob that replays it).
PROPERTY_SETTINGS = settings(
    max_examples=2_000 if LONG else 40,
    derandomize=not LONG,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


class Raise:
    """An answer that is an exception instead of a value."""

    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"Raise({self.kind.__name__})"


# --------------------------------------------------------------------------- strategies

raises = st.sampled_from(
    [Raise(ConnectionError), Raise(TimeoutError), Raise(ValueError), Raise(KeyError)]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.sampled_from(["1.5", "nan", "inf", "-inf", " 2 ", "1_000", "abc", "", "0", "-1e3"]),
)
symbols = st.one_of(
    st.sampled_from(TRACKED + OTHER),
    st.sampled_from(["", " ", "a/usdt:usdt"]),
    st.text(max_size=4),
    st.none(),
    st.integers(),
    json_like,
)
sides = st.one_of(st.sampled_from(["long", "short", "LONG", "", "both"]), numbers)
EXTRA = {
    "entryPrice": numbers,
    "leverage": numbers,
    "info": st.one_of(json_like, st.fixed_dictionaries({"realLeverage": numbers})),
    "liquidationPrice": numbers,
    "markPrice": numbers,
    "contractSize": numbers,
    "unrealizedPnl": json_like,
}
real_entries = st.fixed_dictionaries(
    {
        "symbol": st.sampled_from(TRACKED + OTHER),
        "contracts": st.one_of(
            st.floats(min_value=1e-9, max_value=1e9), st.integers(min_value=1, max_value=10**6)
        ),
        "side": st.sampled_from(["long", "short"]),
    },
    optional=EXTRA,
)
messy_entries = st.fixed_dictionaries(
    {}, optional={"symbol": symbols, "contracts": numbers, "side": sides, **EXTRA}
)
entries = st.one_of(real_entries, messy_entries, json_like)
entry_lists = st.lists(entries, max_size=8)
huge_lists = st.builds(
    lambda block, n: block * n,
    st.lists(st.one_of(real_entries, messy_entries), min_size=1, max_size=3),
    st.integers(min_value=200, max_value=3000),
)
real_lists = st.lists(real_entries, min_size=1, max_size=4)
position_lists = st.one_of(entry_lists, real_lists, real_lists, huge_lists, json_like, raises)
good_tickers = st.fixed_dictionaries({"last": st.floats(min_value=1.0, max_value=1000.0)})
tickers = st.one_of(
    good_tickers,
    good_tickers,
    good_tickers,
    st.fixed_dictionaries({"last": numbers}),
    json_like,
    raises,
)
CANDLES = candles(100.0)
ohlcvs = st.one_of(
    st.just(CANDLES),
    st.lists(st.lists(numbers, min_size=6, max_size=6), max_size=5),
    json_like,
    raises,
)
answers = st.one_of(json_like, raises)  # close_position, orders, limits, cancel


@st.composite
def scripts(draw: st.DrawFn, operations: st.SearchStrategy[str]) -> dict[str, Any]:
    book = draw(st.lists(st.sampled_from(TRACKED), min_size=1, max_size=3, unique=True))
    sides = draw(st.lists(st.sampled_from(["long", "short"]), min_size=3, max_size=3))
    # The truth about the book (some of it), alone or with other entries mixed in.
    truthful = st.lists(st.sampled_from(sorted(zip(book, sides))), max_size=3, unique=True).map(
        lambda pairs: [
            {"symbol": s, "contracts": 1.0, "side": side, "entryPrice": 100.0} for s, side in pairs
        ]
    )
    mixed = st.builds(lambda a, b: a + b, truthful, entry_lists).map(
        lambda xs: sorted(xs, key=repr)
    )
    lists = st.one_of(position_lists, truthful, mixed)
    return {
        "book": book,
        "sides": sides,
        "options": draw(
            st.fixed_dictionaries(
                {
                    "missing_confirmations": st.sampled_from([1, 1, 2]),
                    "snapshot_reuse_seconds": st.sampled_from([0.0, 5.0]),
                }
            )
        ),
        "operations": draw(st.lists(operations, min_size=1, max_size=6)),
        "get_open_positions": draw(st.lists(lists, min_size=1, max_size=6)),
        "get_ticker": draw(
            st.one_of(
                st.lists(tickers, min_size=1, max_size=6),
                st.lists(good_tickers, min_size=1, max_size=2),  # a sane market, a messy venue
            )
        ),
        "get_ohlcv": draw(st.lists(ohlcvs, min_size=1, max_size=4)),
        "close_position": draw(st.lists(answers, min_size=1, max_size=3)),
        "orders": draw(st.lists(answers, min_size=1, max_size=3)),
    }


# --------------------------------------------------------------------------- the checker


def is_well_formed(answer: Any) -> bool:
    """A list/tuple of mappings, each with a non-empty str symbol (rule 3's "well-formed")."""
    if not isinstance(answer, (list, tuple)):
        return False
    return all(
        isinstance(e, Mapping) and isinstance(e.get("symbol"), str) and e.get("symbol") != ""
        for e in answer
    )


def is_real(entry: Any) -> bool:
    """A finite size > 0 and a side: the entry really lists a position."""
    if not isinstance(entry, dict):
        return False
    c = entry.get("contracts")
    return (
        isinstance(c, (int, float))
        and not isinstance(c, bool)
        and math.isfinite(c)
        and c > 0
        and entry.get("side") in ("long", "short")
    )


def real_sides(answer: Any, symbol: str) -> set[str]:
    """The sides ``answer`` really lists ``symbol`` with (empty for non-lists)."""
    if not isinstance(answer, (list, tuple)):
        return set()
    return {e["side"] for e in answer if is_real(e) and e.get("symbol") == symbol}


class ScriptedClient:
    """Answers from the script (cycling), and checks the property at every call's entry."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.counters: dict[str, int] = {}
        self.pm: PositionManager | None = None
        self.last_list: Any = Raise(RuntimeError)  # nothing answered yet: proves nothing
        self.closed_since: set[str] = set()
        self.book: dict[str, Position] = {}
        self.violations: list[str] = []
        self.close_calls: list[tuple[str, Any]] = []
        self.log: list[str] = []
        self.stats: dict[str, int] = {"removed": 0, "kept through a bad answer": 0}

    def next_answer(self, method: str, key: str | None = None) -> Any:
        options = self.script[key or method]
        i = self.counters.get(method, 0)
        self.counters[method] = i + 1
        return options[i % len(options)]

    def observe(self, where: str) -> None:
        assert self.pm is not None
        now = dict(self.pm.positions.items())
        last = self.last_list
        for s, p in self.book.items():
            listed = real_sides(last, s)
            flipped = bool(listed) and p.side not in listed
            if s in now and not is_well_formed(last) and not isinstance(last, Raise):
                self.stats["kept through a bad answer"] += 1
            if s not in now:
                self.stats["removed"] += 1
                absent = is_well_formed(last) and p.side not in listed
                if not (s in self.closed_since or absent or flipped):
                    self.violations.append(
                        f"{s} ({p.side}) removed before {where} though the last answer "
                        f"{'(well-formed) ' if is_well_formed(last) else ''}listed it: "
                        f"{_short(last)}"
                    )
            elif now[s] is not p and not flipped and s not in self.closed_since:
                self.violations.append(f"{s} replaced by another object before {where}")
        self.book = now
        self.closed_since = set()

    def answer(self, method: str, value: Any, closing: str | None = None) -> Any:
        if isinstance(value, Raise):
            raise value.kind(f"scripted {method} failure")
        if closing is not None and value:
            self.closed_since.add(closing)
        return value

    # -- client API -----------------------------------------------------------------------
    def get_open_positions(self) -> Any:
        self.observe("get_open_positions")
        value = self.next_answer("get_open_positions")
        self.last_list = value
        return self.answer("get_open_positions", value)

    def get_ticker(self, symbol: str) -> Any:
        self.observe(f"get_ticker({symbol})")
        return self.answer("get_ticker", self.next_answer("get_ticker"))

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> Any:
        self.observe(f"get_ohlcv({symbol})")
        return self.answer("get_ohlcv", self.next_answer("get_ohlcv"))

    def close_position(self, symbol: str) -> Any:
        self.observe(f"close_position({symbol})")
        value = self.next_answer("close_position")
        self.close_calls.append((symbol, self.last_list))
        return self.answer("close_position", value, closing=symbol)

    def create_market_order(
        self,
        symbol: str,
        side: str,
        amount: float,
        leverage: Any = 10,
        reduce_only: bool = False,
        is_critical: bool = False,
    ) -> Any:
        self.observe(f"create_market_order({symbol})")
        value = self.next_answer("create_market_order", "orders")
        return self.answer("create_market_order", value, closing=symbol if reduce_only else None)

    def create_limit_order(self, *args: Any, **kwargs: Any) -> Any:
        self.observe("create_limit_order")
        return self.answer("create_limit_order", self.next_answer("create_limit_order", "orders"))

    def wait_for_order_fill(self, *args: Any, **kwargs: Any) -> Any:
        self.observe("wait_for_order_fill")
        return self.answer("wait_for_order_fill", self.next_answer("wait_for_order_fill", "orders"))

    def cancel_order(self, *args: Any, **kwargs: Any) -> Any:
        self.observe("cancel_order")
        return self.answer("cancel_order", self.next_answer("cancel_order", "orders"))

    def get_market_limits(self, symbol: str) -> Any:
        self.observe(f"get_market_limits({symbol})")
        return self.answer("get_market_limits", self.next_answer("get_market_limits", "orders"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


def run_script(script: dict[str, Any]) -> ScriptedClient:
    """Builds the manager and book, runs the operations, checks the property throughout."""
    client = ScriptedClient(script)
    pm = make_manager(client, **script["options"])
    client.pm = pm
    for symbol, side in zip(script["book"], script["sides"]):
        p = make_position(symbol, side=side, leverage=1)
        p.strategy = "keep-me"
        pm.positions[symbol] = p
    client.book = dict(pm.positions.items())
    for op in script["operations"]:
        client.log.append(op)
        if op == "update":
            for symbol, pnl, position in pm.update_positions():
                assert isinstance(position, Position) and position.symbol == symbol
                assert isinstance(pnl, float)
        elif op == "sync":
            assert isinstance(pm.sync_existing_positions(), int)
        elif op == "reconcile":
            assert isinstance(pm.reconcile_positions(), int)
        elif op.startswith("close "):
            symbol = op.split(" ", 1)[1]
            if symbol == "*":  # the first tracked position (or one never tracked)
                symbol = next(iter(sorted(pm.positions)), OTHER[0])
            tracked = symbol in pm.positions
            n = len(client.close_calls)
            closed = pm.close_position(symbol, "manual")
            assert closed is None or isinstance(closed, float)
            for s, last in client.close_calls[n:]:
                # A close order only for a tracked position the exchange's answer listed.
                assert tracked and s == symbol, (s, symbol, tracked)
                assert any(isinstance(e, Mapping) and e.get("symbol") == s for e in last), (
                    f"close order for {s} though the list it checked did not list it: "
                    f"{_short(last)}"
                )
        else:  # pragma: no cover
            raise AssertionError(op)
        client.observe(f"the end of {op!r}")
    assert not client.violations, (client.violations, client.log)
    for name, n in client.stats.items():
        event(f"{name}: {'yes' if n else 'no'}")
    event(f"close orders sent: {'yes' if client.close_calls else 'no'}")
    problems = book_problems(pm)
    assert not problems, problems
    for p in pm.positions.values():
        if p.symbol in script["book"] and getattr(p, "strategy", None) is not None:
            assert p.strategy == "keep-me"
    return client


CLOSES = [f"close {s}" for s in TRACKED + OTHER] + ["close *"] * 5


@PROPERTY_SETTINGS
@given(scripts(st.just("update")))
def test_update_cycles_never_raise_nor_drop_a_listed_position(script: dict[str, Any]) -> None:
    run_script(script)


@PROPERTY_SETTINGS
@given(scripts(st.sampled_from(["sync", "reconcile"])))
def test_sync_and_reconcile_never_raise_nor_drop_a_listed_position(
    script: dict[str, Any],
) -> None:
    run_script(script)


@PROPERTY_SETTINGS
@given(scripts(st.sampled_from(CLOSES)))
def test_close_position_never_raises_nor_closes_blind(script: dict[str, Any]) -> None:
    run_script(script)


@PROPERTY_SETTINGS
@given(scripts(st.sampled_from(["update", "update", "sync", "reconcile", *CLOSES])))
def test_any_sequence_of_operations(script: dict[str, Any]) -> None:
    run_script(script)


# --------------------------------------------------------------------------- the checker itself


def test_the_checker_catches_a_removal_after_a_malformed_answer() -> None:
    """The property has teeth: a removal right after a malformed answer is reported."""
    client = ScriptedClient(
        {"get_open_positions": [[{"symbol": "A", "contracts": 1.0, "side": "long"}, "junk"]]}
    )
    pm = make_manager(client)
    client.pm = pm
    pm.positions["A"] = make_position("A")
    client.book = dict(pm.positions.items())
    client.get_open_positions()
    del pm.positions["A"]  # as if the manager had dropped it
    client.observe("test")
    assert client.violations and "removed" in client.violations[0]


def test_well_formed_and_real_definitions() -> None:
    assert is_well_formed([]) and is_well_formed(({"symbol": "A"},))
    assert not is_well_formed(None) and not is_well_formed({"symbol": "A"})
    assert not is_well_formed([{"symbol": ""}]) and not is_well_formed([{"symbol": 5}])
    assert not is_well_formed([{"symbol": "A"}, "junk"])
    assert is_real({"symbol": "A", "contracts": 0.5, "side": "short"})
    for phantom in (
        {"contracts": 0, "side": "long"},
        {"contracts": None, "side": "long"},
        {"contracts": 1.0, "side": None},
        {"contracts": 1.0, "side": ""},
        {"contracts": True, "side": "long"},
        {"contracts": float("nan"), "side": "long"},
        {"contracts": "1.0", "side": "long"},
    ):
        assert not is_real({"symbol": "A", **phantom}), phantom


@pytest.mark.parametrize("side", ["LONG", "Short", "buy", "1.5"])
def test_an_entry_with_an_unknown_side_is_never_imported(side: str) -> None:
    """Found by the sync/reconcile property (PMRS_LONG run): an entry with side '1.5' was
    imported with that side, and every side but 'long' was then handled as a short (stop above
    the entry, P/L inverted). Such an entry must be skipped (or 'LONG'/'Short' normalised)."""
    client = ScriptedClient(
        {
            "get_open_positions": [[{"symbol": "A", "contracts": 1.0, "side": side}]],
            "get_ticker": [{"last": 100.0}],
        }
    )
    pm = make_manager(client)
    client.pm = pm
    pm.sync_existing_positions()
    pm.reconcile_positions()
    p = pm.positions.get("A")
    assert p is None or (p.side in ("long", "short") and p.side == side.lower()), (side, p)
