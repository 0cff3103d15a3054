"""``manager.positions``: a live ``MutableMapping`` view of the book (DESIGN.md, "positions view").

The full dict protocol, object identity with ``get_position``/``update_positions``, extra
attributes, replacing the book by assignment, type errors, thread-safe iteration, and events for
every assignment and deletion.
"""

from __future__ import annotations

import collections.abc
import threading
import time

import pytest
from helpers_clients import FakeExchange, make_manager, make_position

from position_manager_rs import Position, PositionManager


@pytest.fixture
def exchange() -> FakeExchange:
    return FakeExchange()


@pytest.fixture
def pm(exchange: FakeExchange) -> PositionManager:
    return make_manager(exchange)


def kinds(pm: PositionManager, symbol: str) -> list[tuple[str, str]]:
    return [(e["kind"], e["reason"]) for e in pm.events if e["symbol"] == symbol]


# --------------------------------------------------------------------------- basic protocol


def test_is_a_mutable_mapping(pm: PositionManager) -> None:
    assert isinstance(pm.positions, collections.abc.MutableMapping)
    assert isinstance(pm.positions, collections.abc.Mapping)


def test_empty_view(pm: PositionManager) -> None:
    v = pm.positions
    assert len(v) == 0
    assert not v
    assert list(v) == []
    assert list(v.keys()) == []
    assert list(v.values()) == []
    assert list(v.items()) == []
    assert "A" not in v
    assert v == {}
    assert repr(v) == "{}"


def test_setitem_getitem_contains_len(pm: PositionManager) -> None:
    a = make_position("A/USDT:USDT")
    pm.positions["A/USDT:USDT"] = a
    assert "A/USDT:USDT" in pm.positions
    assert "B/USDT:USDT" not in pm.positions
    assert pm.positions["A/USDT:USDT"] is a
    assert len(pm.positions) == 1
    assert bool(pm.positions)
    assert pm.get_open_positions_count() == 1
    assert pm.has_position("A/USDT:USDT")
    assert pm.get_position("A/USDT:USDT") is a


def test_non_string_membership_is_false(pm: PositionManager) -> None:
    pm.positions["A"] = make_position("A")
    assert 1 not in pm.positions
    assert None not in pm.positions
    assert ("A",) not in pm.positions


def test_view_is_live(pm: PositionManager) -> None:
    view = pm.positions
    pm.positions["A"] = make_position("A")
    assert "A" in view  # an earlier view sees later changes
    del view["A"]
    assert "A" not in pm.positions
    assert pm.get_open_positions_count() == 0


def test_delitem(pm: PositionManager) -> None:
    pm.positions["A"] = make_position("A")
    pm.positions["B"] = make_position("B")
    del pm.positions["A"]
    assert "A" not in pm.positions
    assert list(pm.positions) == ["B"]
    assert pm.get_position("A") is None


def test_get(pm: PositionManager) -> None:
    a = make_position("A")
    pm.positions["A"] = a
    sentinel = object()
    assert pm.positions.get("A") is a
    assert pm.positions.get("missing") is None
    assert pm.positions.get("missing", sentinel) is sentinel
    assert pm.positions.get(42) is None


def test_keys_values_items_in_insertion_order(pm: PositionManager) -> None:
    ps = {s: make_position(s) for s in ["C", "A", "B"]}
    for s, p in ps.items():
        pm.positions[s] = p
    assert list(pm.positions.keys()) == ["C", "A", "B"]
    values = list(pm.positions.values())
    assert len(values) == 3
    assert all(v is ps[s] for s, v in zip(["C", "A", "B"], values))
    items = list(pm.positions.items())
    assert [k for k, _ in items] == ["C", "A", "B"]
    assert all(v is ps[k] for k, v in items)
    assert list(pm.positions) == ["C", "A", "B"]
    assert sorted(pm.positions) == ["A", "B", "C"]
    assert dict(pm.positions) == ps


def test_replacing_keeps_position_in_order(pm: PositionManager) -> None:
    for s in ["A", "B", "C"]:
        pm.positions[s] = make_position(s)
    new_b = make_position("B", entry_price=50.0)
    pm.positions["B"] = new_b
    assert list(pm.positions) == ["A", "B", "C"]  # as a dict does
    assert pm.positions["B"] is new_b
    assert len(pm.positions) == 3


def test_pop(pm: PositionManager) -> None:
    a = make_position("A")
    pm.positions["A"] = a
    assert pm.positions.pop("A") is a
    assert "A" not in pm.positions
    with pytest.raises(KeyError):
        pm.positions.pop("A")
    sentinel = object()
    assert pm.positions.pop("A", sentinel) is sentinel
    assert pm.positions.pop("A", None) is None
    assert pm.positions.pop(42, "d") == "d"


def test_popitem_is_lifo_and_raises_when_empty(pm: PositionManager) -> None:
    a, b = make_position("A"), make_position("B")
    pm.positions["A"] = a
    pm.positions["B"] = b
    k, v = pm.positions.popitem()
    assert (k, v) == ("B", b) and v is b
    k, v = pm.positions.popitem()
    assert k == "A" and v is a
    assert len(pm.positions) == 0
    with pytest.raises(KeyError):
        pm.positions.popitem()


def test_clear(pm: PositionManager) -> None:
    for s in ["A", "B", "C"]:
        pm.positions[s] = make_position(s)
    pm.positions.clear()
    assert len(pm.positions) == 0
    assert pm.get_open_positions_count() == 0
    assert pm.get_all_positions() == {}


def test_update_from_mapping_pairs_and_kwargs(pm: PositionManager) -> None:
    a, b, c, d = (make_position(s) for s in "ABCD")
    pm.positions.update({"A": a})
    pm.positions.update([("B", b)])
    pm.positions.update(C=c)
    pm.positions.update({"A": d}, D=d)
    assert pm.positions["A"] is d
    assert pm.positions["B"] is b
    assert pm.positions["C"] is c
    assert pm.positions["D"] is d
    assert len(pm.positions) == 4


def test_update_from_another_view(exchange: FakeExchange) -> None:
    src = make_manager(exchange)
    dst = make_manager(exchange)
    a = make_position("A")
    src.positions["A"] = a
    dst.positions.update(src.positions)
    assert dst.positions["A"] is a


def test_setdefault(pm: PositionManager) -> None:
    a, other = make_position("A"), make_position("A")
    assert pm.positions.setdefault("A", a) is a
    assert pm.positions["A"] is a
    assert pm.positions.setdefault("A", other) is a  # existing entry wins, nothing replaced
    assert pm.positions["A"] is a
    assert len(pm.positions) == 1


def test_setdefault_without_position_default_raises(pm: PositionManager) -> None:
    with pytest.raises(TypeError):
        pm.positions.setdefault("A")
    assert "A" not in pm.positions


def test_equality(pm: PositionManager, exchange: FakeExchange) -> None:
    a, b = make_position("A"), make_position("B")
    pm.positions["A"] = a
    pm.positions["B"] = b
    assert pm.positions == {"A": a, "B": b}
    assert pm.positions == {"B": b, "A": a}  # order does not matter, as for dicts
    assert pm.positions != {"A": a}
    assert pm.positions != {"A": a, "B": make_position("B")}  # Position equality is identity
    assert pm.positions == pm.positions
    assert pm.positions != 5
    assert pm.positions != ["A", "B"]
    other = make_manager(exchange)
    other.positions.update({"A": a, "B": b})
    assert pm.positions == other.positions


def test_repr_shows_symbols_and_positions(pm: PositionManager) -> None:
    pm.positions["A/USDT:USDT"] = make_position("A/USDT:USDT", entry_price=123.5)
    r = repr(pm.positions)
    assert r.startswith("{") and r.endswith("}")
    assert "'A/USDT:USDT'" in r
    assert "123.5" in r


def test_list_and_iteration(pm: PositionManager) -> None:
    for s in ["A", "B"]:
        pm.positions[s] = make_position(s)
    assert list(pm.positions) == ["A", "B"]
    seen = [s for s in pm.positions]
    assert seen == ["A", "B"]
    it = iter(pm.positions)
    assert next(it) == "A"
    assert next(it) == "B"
    with pytest.raises(StopIteration):
        next(it)


def test_deleting_while_iterating_is_allowed(pm: PositionManager) -> None:
    # Iteration works on a snapshot (a plain dict would raise "changed size during iteration").
    for s in "ABCDE":
        pm.positions[s] = make_position(s)
    for s in pm.positions:
        del pm.positions[s]
    assert len(pm.positions) == 0


def test_inserting_while_iterating_is_allowed(pm: PositionManager) -> None:
    for s in "AB":
        pm.positions[s] = make_position(s)
    seen = []
    for s in pm.positions:
        seen.append(s)
        pm.positions[s + "2"] = make_position(s + "2")
    assert seen == ["A", "B"]
    assert set(pm.positions) == {"A", "B", "A2", "B2"}


# --------------------------------------------------------------------------- missing keys, types


def test_missing_key_raises_keyerror(pm: PositionManager) -> None:
    with pytest.raises(KeyError) as info:
        pm.positions["NOPE/USDT:USDT"]
    assert "NOPE/USDT:USDT" in str(info.value)
    with pytest.raises(KeyError):
        del pm.positions["NOPE/USDT:USDT"]
    with pytest.raises(KeyError):
        pm.positions[42]  # type: ignore[index]


@pytest.mark.parametrize(
    "bad_value",
    ["not-a-position-xyz", 123456789, None, {"symbol": "A"}, object()],
    ids=["str", "int", "None", "dict", "object"],
)
def test_wrong_value_type_raises_typeerror_naming_it(
    pm: PositionManager, bad_value: object
) -> None:
    with pytest.raises(TypeError) as info:
        pm.positions["A"] = bad_value  # type: ignore[assignment]
    assert repr(bad_value) in str(info.value) or type(bad_value).__name__ in str(info.value)
    assert "A" not in pm.positions
    with pytest.raises(TypeError):
        pm.positions.update({"A": bad_value})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pm.positions.setdefault("A", bad_value)  # type: ignore[arg-type]
    assert "A" not in pm.positions


def test_wrong_value_message_names_the_value(pm: PositionManager) -> None:
    with pytest.raises(TypeError, match="not-a-position-xyz"):
        pm.positions["A"] = "not-a-position-xyz"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="123456789"):
        pm.positions["A"] = 123456789  # type: ignore[assignment]


@pytest.mark.parametrize(
    "bad_key", [987654321, None, b"A", ("A",)], ids=["int", "None", "bytes", "tuple"]
)
def test_wrong_key_type_raises_typeerror_naming_it(pm: PositionManager, bad_key: object) -> None:
    with pytest.raises(TypeError) as info:
        pm.positions[bad_key] = make_position("A")  # type: ignore[index]
    assert repr(bad_key) in str(info.value)
    assert len(pm.positions) == 0


def test_update_with_non_mapping_raises_typeerror(pm: PositionManager) -> None:
    with pytest.raises(TypeError):
        pm.positions.update(5)  # type: ignore[arg-type]
    assert len(pm.positions) == 0


# --------------------------------------------------------------------------- identity


def test_identity_across_accessors(pm: PositionManager) -> None:
    a = make_position("A")
    pm.positions["A"] = a
    assert pm.positions["A"] is pm.positions["A"]
    assert pm.positions["A"] is pm.get_position("A")
    assert pm.get_all_positions()["A"] is a
    assert next(iter(pm.positions.values())) is a
    assert pm.positions.get("A") is a


def test_get_all_positions_is_a_shallow_copy(pm: PositionManager) -> None:
    a = make_position("A")
    pm.positions["A"] = a
    snapshot = pm.get_all_positions()
    assert type(snapshot) is dict
    snapshot.clear()
    assert "A" in pm.positions


def test_extra_attributes_survive(pm: PositionManager) -> None:
    a = make_position("A")
    pm.positions["A"] = a
    for name in ["strategy", "rl_strategy", "market_regime", "entry_volatility"]:
        assert not hasattr(pm.positions["A"], name)
    pm.positions["A"].strategy = "momentum"
    pm.positions["A"].rl_strategy = "ppo"
    pm.positions["A"].market_regime = "trending"
    pm.positions["A"].entry_volatility = 0.042
    again = pm.get_position("A")
    assert again is not None
    assert again.strategy == "momentum"
    assert again.rl_strategy == "ppo"
    assert again.market_regime == "trending"
    assert again.entry_volatility == 0.042
    assert getattr(a, "strategy", "unknown") == "momentum"


def test_imported_positions_keep_identity_and_attributes(exchange: FakeExchange) -> None:
    exchange.open("SOL/USDT:USDT", entry_price=100.0)
    pm = make_manager(exchange)
    assert pm.sync_existing_positions() == 1
    p = pm.positions["SOL/USDT:USDT"]
    assert isinstance(p, Position)
    assert not hasattr(p, "strategy")
    p.strategy = "imported-test"
    assert pm.get_position("SOL/USDT:USDT") is p
    assert pm.positions["SOL/USDT:USDT"].strategy == "imported-test"
    assert list(pm.update_positions()) == []  # a healthy cycle changes nothing
    assert pm.positions["SOL/USDT:USDT"] is p


def test_update_positions_yields_the_same_object(exchange: FakeExchange) -> None:
    exchange.open("A", entry_price=100.0, leverage=1)
    exchange.set_price("A", 90.0)  # long, stop 95: closes with 'stop_loss'
    pm = make_manager(exchange)
    a = make_position("A", leverage=1)
    pm.positions["A"] = a
    a.strategy = "breakout"
    closed = list(pm.update_positions())
    assert len(closed) == 1
    symbol, pnl, position = closed[0]
    assert symbol == "A"
    assert position is a
    assert position.strategy == "breakout"
    assert pnl == pytest.approx((90.0 - 100.0) / 100.0 - 0.0012)
    assert "A" not in pm.positions


def test_python_writes_are_what_the_manager_sees(exchange: FakeExchange) -> None:
    exchange.open("A", entry_price=100.0, leverage=1)
    exchange.set_price("A", 100.0)
    pm = make_manager(exchange)
    pm.positions["A"] = make_position("A", leverage=1)
    assert list(pm.update_positions()) == []  # price at entry: healthy
    pm.positions["A"].stop_loss = 100.5  # a long whose stop is above the price: stop_loss
    closed = list(pm.update_positions())
    assert [c[0] for c in closed] == ["A"]
    assert [(e["kind"], e["reason"]) for e in pm.events if e["kind"] == "closed"] == [
        ("closed", "stop_loss")
    ]


# --------------------------------------------------------------------------- assignment


def test_assigning_a_dict_replaces_the_book(pm: PositionManager) -> None:
    old = make_position("OLD")
    pm.positions["OLD"] = old
    a, b = make_position("A"), make_position("B")
    pm.positions = {"A": a, "B": b}
    assert set(pm.positions) == {"A", "B"}
    assert pm.positions["A"] is a
    assert pm.positions["B"] is b
    assert pm.get_position("OLD") is None
    assert pm.get_open_positions_count() == 2
    assert isinstance(pm.positions, collections.abc.MutableMapping)  # still the view
    pm.positions = {}
    assert len(pm.positions) == 0


def test_failed_assignment_leaves_the_book_unchanged(pm: PositionManager) -> None:
    a = make_position("A")
    pm.positions["A"] = a
    with pytest.raises(TypeError):
        pm.positions = {"B": make_position("B"), "C": "garbage"}  # type: ignore[assignment]
    assert list(pm.positions) == ["A"]
    assert pm.positions["A"] is a


# --------------------------------------------------------------------------- events


def test_assignment_and_deletion_are_events(pm: PositionManager) -> None:
    a = make_position("A", entry_price=101.0)
    pm.positions["A"] = a
    assert kinds(pm, "A") == [("added", "assigned")]
    event = pm.events[-1]
    assert event["symbol"] == "A"
    assert event["position"]["entry_price"] == 101.0
    assert event["pnl"] is None
    del pm.positions["A"]
    assert [k for k, _ in kinds(pm, "A")] == ["added", "untracked"]
    assert pm.events[-1]["position"]["entry_price"] == 101.0


def test_replacement_records_the_displaced_position(pm: PositionManager) -> None:
    pm.positions["A"] = make_position("A", entry_price=100.0)
    pm.positions["A"] = make_position("A", entry_price=200.0)
    evs = [e for e in pm.events if e["symbol"] == "A"]
    assert [e["kind"] for e in evs] == ["added", "untracked", "added"]
    assert evs[1]["position"]["entry_price"] == 100.0  # the displaced one, not lost silently
    assert evs[2]["position"]["entry_price"] == 200.0


def test_every_mutation_kind_is_an_event(pm: PositionManager) -> None:
    for s in "ABCDEF":
        pm.positions[s] = make_position(s)
    before = len(pm.events)
    pm.positions.pop("A")
    pm.positions.popitem()  # F
    pm.positions.update({"G": make_position("G")})
    pm.positions.setdefault("H", make_position("H"))
    pm.positions.setdefault("H", make_position("H"))  # no change: no event
    pm.positions.clear()  # B, C, D, E, G, H
    new = pm.events[before:]
    untracked = sorted(e["symbol"] for e in new if e["kind"] == "untracked")
    added = sorted(e["symbol"] for e in new if e["kind"] == "added")
    assert untracked == sorted("ABCDEFGH")
    assert added == ["G", "H"]
    seqs = [e["seq"] for e in pm.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_assigning_the_book_records_removals_and_additions(pm: PositionManager) -> None:
    pm.positions["OLD"] = make_position("OLD")
    before = len(pm.events)
    pm.positions = {"NEW": make_position("NEW")}
    new = [(e["kind"], e["symbol"]) for e in pm.events[before:]]
    assert ("untracked", "OLD") in new
    assert ("added", "NEW") in new


# --------------------------------------------------------------------------- threads


def test_iteration_while_another_thread_mutates(pm: PositionManager) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def mutate() -> None:
        i = 0
        try:
            while not stop.is_set():
                s = f"S{i % 50}"
                pm.positions[s] = make_position(s)
                pm.positions.pop(f"S{(i * 7) % 50}", None)
                if i % 97 == 0:
                    pm.positions.clear()
                i += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=mutate, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    iterations = 0
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            for s in pm.positions:
                assert isinstance(s, str)
            for s, p in pm.positions.items():
                assert isinstance(p, Position)
                assert p.symbol == s
            for p in pm.positions.values():
                assert isinstance(p, Position)
            # (``dict(view)`` is not atomic: it reads keys() and then each item, so a key removed
            # in between raises KeyError; copy() and get_all_positions() are the atomic copies.)
            assert all(isinstance(p, Position) for p in pm.positions.copy().values())
            assert all(isinstance(p, Position) for p in pm.get_all_positions().values())
            assert len(list(pm.positions)) <= 50
            iterations += 1
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not any(t.is_alive() for t in threads), "mutator threads did not stop (deadlock?)"
    assert not errors, errors
    assert iterations > 10


def test_view_and_manager_agree_under_concurrency(exchange: FakeExchange) -> None:
    pm = make_manager(exchange)
    for s in ["X", "Y"]:
        exchange.open(s)
    pm.sync_existing_positions()
    stop = threading.Event()
    failures: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for s in ["X", "Y"]:
                p = pm.positions.get(s)
                q = pm.get_position(s)
                if p is None or q is None:
                    failures.append(f"{s}: lost during a healthy update cycle")
                elif p is not q:
                    failures.append(f"{s}: view and get_position gave different objects")

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for _ in range(200):
            list(pm.update_positions())
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert not failures, failures[:5]
    assert set(pm.positions) == {"X", "Y"}


def test_positions_of_two_managers_are_independent(exchange: FakeExchange) -> None:
    one, two = make_manager(exchange), make_manager(exchange)
    one.positions["A"] = make_position("A")
    assert "A" not in two.positions
    assert len(one.positions) == 1
