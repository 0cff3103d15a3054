"""Sustained load: at least 8 threads share a budget of mixed operations over 1 000 symbols
against the thread-safe ``FakeExchange`` (``reliability_helpers.LoadRun``): update cycles,
opens, closes, scale in/out, target changes, assignments, deletions, iteration, lookups, syncs,
reconciliations, manual closes on the exchange and price moves.

* Deadlock detection: every worker is joined with a deadline (``Workers.join``); a hang fails.
* No worker sees an exception; the book is consistent at the end.
* **Lost positions = 0** (defined in ``LoadRun``): no position the exchange holds is untracked
  unless the test untracked it itself (and no sync ran since), and after the quiet update
  cycles the removal rules ask for and one sync the book equals the exchange.
* Operations per second are printed (``-s``) and recorded in docs/reliability.md.

CI runs 10 000 operations; ``PMRS_LONG=1`` runs 100 000 (``benches/bench_load.py`` too).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from reliability_helpers import LOAD_OPS, LONG, LoadRun, seeds

# Long runs outlast the suite-wide pytest-timeout (120 s per test).
pytestmark = [pytest.mark.timeout(3600)] if LONG else []
OPERATIONS = 100_000 if LONG else 10_000
SYMBOLS = 1_000
THREADS = 8


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    """Drop the manager's (expected, numerous) warnings: capturing them would be the load."""
    loggers = [logging.getLogger(n) for n in ("TradingBot", "TradingBot.Position")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    yield
    for lg, level in zip(loggers, levels):
        lg.setLevel(level)


@pytest.mark.parametrize("seed", seeds([2024]))
def test_sustained_load_loses_no_position(seed: int) -> None:
    run = LoadRun(
        seed=seed,
        threads=THREADS,
        symbols=SYMBOLS,
        operations=OPERATIONS,
        deadline=900.0 if LONG else 120.0,
    )
    result = run.run()
    print(f"\nload: {result.summary()}")
    assert result.operations == OPERATIONS, result.summary()
    assert set(result.op_counts) == set(LOAD_OPS), result.summary()
    assert not result.problems, (result.problems[:10], result.summary())
    assert result.lost_untracked == [], (result.lost_untracked[:10], result.summary())
    assert result.stale_after_cycle == [], (result.stale_after_cycle[:10], result.summary())
    assert result.missing_after_sync == [], (result.missing_after_sync[:10], result.summary())
    assert result.lost == 0


def test_the_lost_count_has_teeth() -> None:
    """A position dropped behind the test's back (as a faulty manager would) is counted."""
    run = LoadRun(seed=1, threads=1, symbols=10, operations=0)
    run.setup()
    victim = run.symbols[0]
    del run.pm.positions[victim]  # not recorded as the test's own untracking
    result = run.verdict(0, 1.0)
    assert [x.split(":")[0] for x in result.lost_untracked] == [victim.split(":")[0]]
    assert result.lost == 1


def test_a_fresh_fill_closed_by_hand_before_any_list_is_not_counted_stale() -> None:
    """The manager's own open, closed on the exchange before any list showed it, is untracked
    only after ``outcome_confirmations`` lists omit it (one list cannot tell that from a list
    lagging the fill): the verdict runs the cycles the removal rules ask for. With one cycle it
    counted this position stale (CI, seed 2024, ``L0984/USDT:USDT``)."""
    run = LoadRun(seed=1, threads=1, symbols=10, operations=0)
    run.setup()
    fresh = run.symbols[1]  # the exchange does not hold it after setup
    assert run.pm.open_position(fresh, "BUY", 1.0, 5, 0.05) is not None
    run.exchange.drop(fresh)
    assert run.pm.config.outcome_confirmations == 2
    result = run.verdict(0, 1.0)
    assert result.stale_after_cycle == [], result.summary()
    assert fresh not in run.pm.positions
    assert result.lost == 0


def test_the_stale_count_has_teeth() -> None:
    """A position the exchange no longer holds that the cycles cannot drop (every list read
    fails, so the manager keeps everything) is counted stale."""
    run = LoadRun(seed=1, threads=1, symbols=10, operations=0)
    run.setup()
    victim = run.symbols[0]
    run.exchange.drop(victim)

    def failing_list() -> list[dict[str, object]]:
        raise ConnectionError("list unavailable")

    run.exchange.on_get_open_positions = failing_list
    result = run.verdict(0, 1.0)
    assert result.stale_after_cycle == [victim]
    assert result.lost == 1
