"""A bot whose daemon thread is inside a manager call when the interpreter exits.

Run by tests/test_interpreter_exit.py as ``python exit_child.py SCENARIO [ARG]``; prints what it
saw as ``name=value`` lines from an ``atexit`` callback registered before the package is imported
(so it runs after the package's own exit callback, as a bot's would).

Scenarios:
  cycles WORKERS DELAY   cycles back to back (20 positions, every client call sleeps 1 ms) on a
                         daemon thread; the main thread leaves after DELAY seconds
  in-flight SECONDS      the daemon thread's cycle is inside a ticker read that sleeps SECONDS
                         when the main thread leaves
  close                  the daemon thread's close_position() is inside the client's close (0.5 s)
                         when the main thread leaves
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from typing import Any

seen: dict[str, Any] = {}
checks: list[Any] = []


def report() -> None:
    for name, value in seen.items():
        print(f"{name}={value}", flush=True)


def run_checks() -> None:
    for check in checks:
        check()


# Registered before the package is imported: atexit runs callbacks last in, first out, so the
# package's own exit callback runs first, then the checks, then the report.
atexit.register(report)
atexit.register(run_checks)

from position_manager_rs import Position, PositionManager  # noqa: E402

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


class Client:
    """Answers one long position per symbol; every call sleeps (and so lets go of the GIL)."""

    def __init__(self, symbols: list[str], ticker_sleep: float = 0.001) -> None:
        self.symbols = list(symbols)
        self.ticker_sleep = ticker_sleep
        self.ticker_calls = 0
        self.closes: list[str] = []
        self.in_call = threading.Event()
        self.in_close = threading.Event()

    def get_open_positions(self) -> list[dict[str, Any]]:
        time.sleep(0.001)
        return [
            {"symbol": s, "side": "long", "contracts": 1.0, "entryPrice": 100.0}
            for s in self.symbols
        ]

    def get_ticker(self, symbol: str) -> dict[str, float]:
        self.ticker_calls += 1
        self.in_call.set()
        time.sleep(self.ticker_sleep)
        return {"last": 100.0}

    def get_ohlcv(self, symbol: str, timeframe: str = "1h", limit: int = 100) -> list[Any]:
        return []

    def close_position(self, symbol: str) -> bool:
        self.in_close.set()
        time.sleep(0.5)
        self.closes.append(symbol)
        self.symbols.remove(symbol)
        return True


def manager(client: Client, workers: int = 1) -> PositionManager:
    pm = PositionManager(client, 0.02, max_concurrent_calls=workers)
    for s in client.symbols:
        pm.positions[s] = Position(s, "long", 100.0, 1.0, 10, 50.0, 200.0)
    return pm


def main() -> None:
    scenario = sys.argv[1]
    symbols = [f"S{i}/USDT:USDT" for i in range(20)]
    if scenario == "cycles":
        workers, delay = int(sys.argv[2]), float(sys.argv[3])
        pm = manager(Client(symbols), workers)

        def loop() -> None:
            while True:
                for _ in pm.update_positions():
                    pass

        threading.Thread(target=loop, daemon=True).start()
        time.sleep(delay)
        return
    if scenario == "in-flight":
        client = Client(symbols[:2], ticker_sleep=float(sys.argv[2]))
        pm = manager(client)
        thread = threading.Thread(target=lambda: list(pm.update_positions()), daemon=True)
        thread.start()
        client.in_call.wait(10)
        started = time.monotonic()

        def after() -> None:
            thread.join(5)
            seen["ticker_calls"] = client.ticker_calls
            seen["thread_alive"] = thread.is_alive()
            seen["waited"] = round(time.monotonic() - started, 2)
            seen["count"] = pm.get_open_positions_count()

        checks.append(after)
        return
    if scenario == "close":
        client = Client(symbols[:2])
        pm = manager(client)
        answers: list[Any] = []
        thread = threading.Thread(
            target=lambda: answers.append(pm.close_position(symbols[0], "exit")), daemon=True
        )
        thread.start()
        client.in_close.wait(10)

        def after() -> None:
            # Briefly: the package's exit callback has already waited for the close (without
            # it, the close would still be in flight here).
            thread.join(0.2)
            seen["closes"] = ",".join(client.closes)
            seen["answers"] = answers
            seen["count"] = pm.get_open_positions_count()
            seen["tracked"] = ",".join(pm.positions)
            seen["closed_events"] = sum(1 for e in pm.events if e["kind"] == "closed")

        checks.append(after)
        return
    raise SystemExit(f"unknown scenario {scenario}")


main()
