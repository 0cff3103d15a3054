"""``python -m position_manager_rs demo``: runs, shows the scripted venue events, the final
tables, and prints the same output for the same seed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

TIMEOUT = 120
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "position_manager_rs", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def run_demo(seed: int = 7, cycles: int = 12, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "demo",
        "--cycles",
        str(cycles),
        "--speed",
        "0",
        "--seed",
        str(seed),
        "--no-color",
        *extra,
    )


@pytest.fixture(scope="module")
def demo_output() -> str:
    result = run_demo()
    assert result.returncode == 0, f"demo failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def _section(text: str, title: str) -> list[str]:
    """The lines of the block that starts with ``title`` (up to the next blank line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    block = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        block.append(line)
    return block


def test_demo_shows_every_scripted_venue_event(demo_output: str) -> None:
    out = demo_output
    assert "seed 7" in out and "12 cycles" in out
    for text in (
        "manual close",
        "empty answer",
        "API failure",
        "LIQUIDATION",
        "partial reduction",
    ):
        assert re.search(rf"^\d\d:\d\d  venue  {text} ", out, re.M), f"no venue line: {text}"
    # what the manager made of them
    assert re.search(r"^\d\d:\d\d  book   removed\s+\S+\s+closed_externally$", out, re.M)
    assert re.search(r"^\d\d:\d\d  warn   Unable to verify positions on exchange", out, re.M)
    assert len(re.findall(r"^\d\d:\d\d  open   ", out, re.M)) >= 4
    assert len(re.findall(r"^\d\d:\d\d  cycle ", out, re.M)) == 12


def test_demo_ends_with_the_open_positions_and_the_event_history(demo_output: str) -> None:
    table = _section(demo_output, "Positions still open at ")
    assert table[-1] == "  P/L gross: leveraged return on margin at the last price, before fees"
    table = table[:-1]
    header = re.split(r"\s{2,}", table[0].strip())
    assert header == [
        "symbol",
        "side",
        "entry",
        "amount",
        "venue",
        "lev",
        "stop",
        "take-profit",
        "last",
        "P/L gross",
    ]
    rows = table[1:]
    assert rows, "the demo should end with open positions"
    for row in rows:
        cells = row.split()
        assert len(cells) == len(header), row
        assert cells[0].endswith("/USDT:USDT") and cells[1] in ("long", "short")
        assert re.fullmatch(r"[+-]\d+\.\d\d%", cells[-1])
    # aligned columns: every row of the table has the same width as the header line
    assert {len(line) for line in table} == {len(table[0])}

    match = re.search(r"^Manager event history \((\d+) events\)$", demo_output, re.M)
    assert match is not None
    history = _section(demo_output, "Manager event history")
    assert history[-1].startswith("  P/L net: leveraged, after the 0.12 % round-trip fee")
    history = history[:-1]
    assert re.split(r"\s{2,}", history[0].strip()) == [
        "seq",
        "time",
        "symbol",
        "kind",
        "P/L net",
        "reason",
    ]
    assert len(history) == int(match.group(1)) + 1
    seqs = [int(line.split()[0]) for line in history[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    event_kinds = {line.split()[3] for line in history[1:]}
    assert {"opened", "removed"} <= event_kinds
    assert re.search(r"^Venue: .*liquidation 1", demo_output, re.M)


def test_demo_output_is_identical_for_the_same_seed(demo_output: str) -> None:
    again = run_demo()
    assert again.returncode == 0, again.stderr
    assert again.stdout == demo_output
    other = run_demo(seed=8)
    assert other.returncode == 0, other.stderr
    assert other.stdout != demo_output


def test_no_color_and_no_log_noise(demo_output: str) -> None:
    assert not ANSI.search(demo_output)
    # the manager's own INFO records stay quiet without --verbose
    assert "OPENING POSITION" not in demo_output
    assert "TradingBot" not in demo_output


def test_verbose_shows_the_manager_log_records() -> None:
    result = run_demo(7, 2, "--verbose", "--symbols", "BTC/USDT:USDT,ETH/USDT:USDT")
    assert result.returncode == 0, result.stderr
    assert "TradingBot.Position INFO OPENING POSITION: BTC/USDT:USDT" in result.stdout
    assert "2 symbols" in result.stdout
    assert "SOL/USDT:USDT" not in result.stdout


def test_cli_help_and_bad_arguments() -> None:
    result = run_cli("demo", "--help")
    assert result.returncode == 0
    for option in ("--seed", "--symbols", "--cycles", "--speed", "--no-color", "--events"):
        assert option in result.stdout
    assert run_cli().returncode == 2  # a command is required
    assert run_cli("demo", "--cycles", "0").returncode == 2
    assert run_cli("demo", "--speed", "-1").returncode == 2
    assert run_cli("demo", "--events", "apocalypse").returncode == 2


def test_demo_labels_pl_and_ends_with_both_realized_totals(demo_output: str) -> None:
    # Every percentage the demo prints says whether it is before or after fees ...
    assert re.search(r"^\d\d:\d\d  close  .* P/L [+-]\d+\.\d\d% net$", demo_output, re.M)
    for line in re.findall(r"^\d\d:\d\d  book   .*%.*$", demo_output, re.M):
        assert line.endswith("% net") or line.endswith("%)"), line
    # ... and it ends with the manager's realized total beside the venue's.
    block = _section(demo_output, "Realized P/L (USDT)")
    assert len(block) == 2
    manager = re.fullmatch(r"  manager +([+-]\d+\.\d\d)  the (\d+) closes and partial .*", block[0])
    venue = re.fullmatch(r"  venue +([+-]\d+\.\d\d)  every fill, .*", block[1])
    assert manager and venue, block
    assert int(manager.group(2)) > 0
    assert demo_output.rstrip().endswith(block[1].rstrip())


def test_the_managers_realized_total_is_the_venues_minus_fees() -> None:
    from position_manager_rs import PaperExchange, PositionManager
    from position_manager_rs.__main__ import realized_usdt

    # No spread: the manager's exit price (the ticker) is the venue's fill price, so the two
    # totals differ by exactly the manager's 0.12 % round-trip fee on the entry value closed.
    paper = PaperExchange(seed=3, volatility=0.0, spread=0.0)
    pm = PositionManager(paper, 0.02, ticker_retry_delays=(), clock=paper.clock)
    eth, sol = "ETH/USDT:USDT", "SOL/USDT:USDT"
    assert pm.open_position(eth, "BUY", 20, 10, 0.05)
    assert pm.open_position(sol, "SELL", 30, 4, 0.05)
    paper.set_price(eth, paper.price(eth) * 1.004)
    paper.set_price(sol, paper.price(sol) * 1.01)
    assert pm.scale_out_position(eth, 5) is not None
    assert pm.close_position(eth) is not None
    assert pm.close_position(sol) is not None
    total, closes = realized_usdt(pm.events, paper.contract_size)
    assert closes == 3
    entry_value = {eth: 20 * 0.01 * 3000.0, sol: 30 * 0.1 * 125.0}  # contracts * size * entry
    assert [(e["symbol"], e["position"]["entry_price"]) for e in pm.events[:2]] == [
        (eth, 3000.0),
        (sol, 125.0),
    ]
    fees = 0.0012 * sum(entry_value.values())
    assert paper.realized_pnl == pytest.approx(0.6 + 1.8 - 3.75)
    assert total == pytest.approx(paper.realized_pnl - fees, rel=1e-9)


@pytest.mark.parametrize("extra", [[], ["-vv"]], ids=["plain", "verbose"])
def test_a_reader_that_closes_early_ends_the_demo_quietly(extra: list[str]) -> None:
    # `python -m position_manager_rs demo | head -1`: the demo writes far more than a pipe
    # buffer holds (2000 cycles), so it is still writing when the reader goes away. With -vv
    # the manager's log records (written by a logging handler) meet the closed pipe first.
    command = [sys.executable, "-m", "position_manager_rs", "demo", "--speed", "0", "--no-color"]
    proc = subprocess.Popen(
        [*command, "--cycles", "2000", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # the reader is done
        err = proc.stderr.read()
        returncode = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the demo hangs
            proc.kill()
            proc.wait()
    assert first.startswith(b"position_manager_rs demo: paper exchange")
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert err == b""
    assert returncode == 141  # 128 + SIGPIPE, as a tool killed by SIGPIPE reports


def test_main_turns_a_broken_pipe_into_exit_141_and_lets_interrupts_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from position_manager_rs import __main__ as cli

    class ClosedPipe(io.StringIO):  # no fileno(): main leaves the process's stdout alone
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["demo", "--speed", "0", "--no-color", "--cycles", "1"]) == 141

    for exc in (KeyboardInterrupt, SystemExit):

        def interrupted(args: object, out: object = None, exc: type = exc) -> int:
            raise exc()

        monkeypatch.setattr(cli, "run_demo", interrupted)
        with pytest.raises(exc):
            cli.main(["demo"])
