"""Shared by the update-cycle benchmarks: timing `update_positions()` while no position closes."""

from __future__ import annotations

import statistics
import time

from position_manager_rs import PositionManager


def time_cycles(pm: PositionManager, cycles: int, repeats: int) -> tuple[float, float]:
    """(median, best) microseconds per position per cycle over `repeats` runs of `cycles`
    cycles, after one warm-up cycle. Every position must stay open (a close fails the run)."""
    n_positions = len(pm.positions)
    list(pm.update_positions())  # warm-up
    per_position = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(cycles):
            for _ in pm.update_positions():
                raise AssertionError("no position should close in this benchmark")
        elapsed = time.perf_counter() - t
        per_position.append(elapsed / cycles / n_positions * 1e6)
    assert len(pm.positions) == n_positions
    return statistics.median(per_position), min(per_position)
