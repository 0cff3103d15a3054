"""The state file on disk (docs/persistence.md "The file on disk"): concurrent saves, symlinks,
permissions, targets that are not regular files, any file name, attributes only their own JSON
text can carry, and interrupts during a save or a load.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_clients import (
    Workers,
    assert_ctrl_c_ends,
    make_position,
    run_memory_limited,
    run_with_timeout,
)

from position_manager_rs import PositionManager

# A client no test here calls (typed as one for the stubs).
NO_CLIENT: Any = object()

A = "BTC/USDT:USDT"


def manager_with(*symbols: str) -> PositionManager:
    pm = PositionManager(NO_CLIENT)
    for s in symbols:
        pm.positions[s] = make_position(s)
    return pm


def loaded(path: Any) -> PositionManager:
    fresh = PositionManager(NO_CLIENT)
    fresh.load_state(path)
    return fresh


def temp_files(directory: Path) -> list[str]:
    return sorted(f.name for f in directory.iterdir() if ".tmp-" in f.name)


# --------------------------------------------------------------------------- concurrent saves


def test_concurrent_saves_never_leave_an_older_book_than_a_completed_save(tmp_path: Path) -> None:
    """Each save sets a higher generation on the position before it starts; once a save has
    returned, the file never holds a lower generation than the one that save started with, and
    after the last save the file holds the last generation."""
    path = tmp_path / "state.json"
    pm = manager_with(A)
    position = pm.positions[A]
    # Enough attribute data that serialising it takes a while (widens the race window).
    position.payload = [list(range(50)) for _ in range(400)]
    counter = {"generation": 0}
    counter_lock = threading.Lock()
    violations: list[str] = []
    workers = Workers()

    def on_disk() -> int:
        return int(json.loads(path.read_bytes())["positions"][0]["extra"]["generation"])

    def saver(name: str) -> None:
        for _ in range(30):
            with counter_lock:
                counter["generation"] += 1
                mine = counter["generation"]
                position.generation = mine
            pm.save_state(path)
            seen = on_disk()
            if seen < mine:
                violations.append(f"{name}: saved generation {mine}, file has {seen}")

    for i in range(4):
        workers.spawn(f"saver-{i}", functools.partial(saver, f"saver-{i}"))
    workers.start()
    workers.join(60.0)
    assert violations == []
    assert on_disk() == counter["generation"] == 120
    assert temp_files(tmp_path) == []


SAVER = textwrap.dedent(
    """
    import os, sys, time
    from position_manager_rs import Position, PositionManager
    path, tag, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pm = PositionManager(object())
    for i in range(20):
        p = Position(f"S{i}/USDT:USDT", "long", 100.0 + i, 1.0, 5, 95.0, 110.0)
        p.writer = tag
        pm.positions[p.symbol] = p
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    for _ in range(rounds):
        pm.save_state(path)
    """
)


def test_two_processes_saving_one_file_both_succeed_and_it_always_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), tag, "150", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("one", "two")
    ]
    loads = 0
    try:
        for p in procs:  # both ready, then both start at once
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        while any(p.poll() is None for p in procs):
            if path.exists():
                fresh = loaded(path)  # never partial, never mixed
                assert len(fresh.positions) == 20
                writers = {p.writer for p in fresh.positions.values()}
                assert len(writers) == 1 and writers <= {"one", "two"}
                loads += 1
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    assert loads > 0
    assert len(loaded(path).positions) == 20
    assert temp_files(tmp_path) == []


# ----------------------------------------------------------------- a directory locked by another

# How long a save waits for another holder of its directory's lock (docs/persistence.md).
DIR_LOCK_WAIT = 3.0


@contextlib.contextmanager
def dir_locked(directory: Path) -> Iterator[None]:
    """Holds an exclusive flock on ``directory`` through a descriptor of its own, as
    ``flock -n <directory> python bot.py`` does for the bot's whole life (a flock belongs to the
    open file, so it conflicts with the save's own lock in this process too)."""
    import fcntl

    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


@pytest.mark.skipif(sys.platform == "win32", reason="needs flock")
def test_a_directory_locked_for_good_is_saved_into_after_a_bounded_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    pm = manager_with(A)
    with dir_locked(tmp_path), caplog.at_level(logging.WARNING, logger="TradingBot"):
        started = time.monotonic()
        saved = run_with_timeout(
            lambda: pm.save_state(path), 30.0, "save_state into a locked directory"
        )
        took = time.monotonic() - started
    assert saved == 1
    assert DIR_LOCK_WAIT <= took < 30.0
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "TradingBot" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, warnings
    assert f"the directory {tmp_path} stays locked by another process" in warnings[0]
    assert f"saving {path} without the cross-process lock" in warnings[0]
    assert len(loaded(path).positions) == 1
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="needs flock and SIGINT")
def test_ctrl_c_while_waiting_for_a_locked_directory_ends_the_save(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    manager_with(A).save_state(path)
    before = path.read_bytes()
    pm = manager_with(A, "ETH/USDT:USDT")
    with dir_locked(tmp_path):
        # Well before the wait would run out: the save ends with the KeyboardInterrupt.
        assert_ctrl_c_ends(lambda: pm.save_state(path), after=0.5, within=DIR_LOCK_WAIT - 0.5)
    assert path.read_bytes() == before  # nothing written
    assert temp_files(tmp_path) == []
    assert pm.save_state(path) == 2  # the next save works
    assert len(loaded(path).positions) == 2


# --------------------------------------------------------------------------- symlinks, modes


def test_saving_to_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "state.json"
    link = tmp_path / "state.json"
    link.symlink_to(Path("real") / "state.json")  # relative, resolved from the link's folder
    manager_with(A).save_state(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "state.json")
    assert target.is_file() and not target.is_symlink()
    assert list(loaded(link).positions) == [A]
    # Saving again through the link replaces the target again; the link stays.
    manager_with(A, "ETH/USDT:USDT").save_state(link)
    assert link.is_symlink() and len(loaded(target).positions) == 2
    assert temp_files(tmp_path) == [] and temp_files(tmp_path / "real") == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="planting another user's symlink needs root (os.lchown)",
)
def test_another_users_symlink_in_a_shared_directory_is_not_followed(tmp_path: Path) -> None:
    """A save follows links itself (it renames over their final target), so the kernel's
    ``fs.protected_symlinks`` never sees them: another user's link planted at the state path in
    a sticky, world-writable directory (``/tmp``) made the bot replace any file it may write
    (found by an audit on 2026-12-07). Such a link is refused with ``EACCES``, as the kernel
    refuses to follow it; the bot's own link there, and any link in a private directory, are
    followed as before."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim.conf"
    victim.write_text("keep me\n")
    planted = shared / "state.json"
    planted.symlink_to(victim)
    os.lchown(planted, 65534, 65534)  # nobody's link
    with pytest.raises(PermissionError) as info:
        manager_with(A).save_state(planted)
    assert info.value.errno == errno.EACCES
    assert info.value.filename == str(planted)
    assert "belongs to another user" in str(info.value)
    assert victim.read_text() == "keep me\n"
    assert temp_files(shared) == [] and temp_files(tmp_path) == []

    # The directory's owner's link and the bot's own link are followed.
    os.lchown(planted, 0, 0)
    manager_with(A).save_state(planted)
    assert list(loaded(victim).positions) == [A]
    # Another user's link in a directory that is not shared is followed too (as the kernel).
    private = tmp_path / "private"
    private.mkdir()
    theirs = private / "state.json"
    theirs.symlink_to(tmp_path / "theirs.json")
    os.lchown(theirs, 65534, 65534)
    manager_with(A).save_state(theirs)
    assert list(loaded(tmp_path / "theirs.json").positions) == [A]


def test_an_existing_file_keeps_its_mode_and_a_new_one_is_owner_only(tmp_path: Path) -> None:
    pm = manager_with(A)
    fresh = tmp_path / "new.json"
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        pm.save_state(fresh)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    shared = tmp_path / "shared.json"
    for mode in (0o640, 0o444, 0o604):
        shared.write_text("{}")
        shared.chmod(mode)
        pm.save_state(shared)
        assert stat.S_IMODE(shared.stat().st_mode) == mode
        assert len(loaded(shared).positions) == 1
        shared.chmod(0o600)
        shared.unlink()


# --------------------------------------------------------------------------- failed saves

TOO_LARGE = textwrap.dedent(
    """
    import resource, signal, sys
    from position_manager_rs import Position, PositionManager
    pm = PositionManager(object())
    p = Position("BTC/USDT:USDT", "long", 100.0, 1.0, 5, 95.0, 110.0)
    p.payload = "x" * 100_000
    pm.positions[p.symbol] = p
    # Writes beyond 4 KiB fail with EFBIG (as a full disk fails with ENOSPC).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        pm.save_state(sys.argv[1])
    except OSError as e:
        print(e.errno, e.filename, e.strerror, sep="\\n")
    """
)


def test_a_failed_save_names_the_path_it_was_given(tmp_path: Path) -> None:
    """Not the temporary file it was writing (that one is only detail in the message)."""
    pm = manager_with(A)
    missing = tmp_path / "nope" / "state.json"
    with pytest.raises(FileNotFoundError) as info:
        pm.save_state(missing)
    assert info.value.filename == str(missing)
    assert "cannot save the state (cannot create the temporary file " in str(info.value)
    # Through a symlink whose target's directory is gone: the link, as given.
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "gone" / "real.json")
    with pytest.raises(FileNotFoundError) as info:
        pm.save_state(link)
    assert info.value.filename == str(link)
    assert sorted(os.listdir(tmp_path)) == ["link.json"]


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_save_that_cannot_write_names_the_path_it_was_given(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    script = tmp_path / "too_large.py"
    script.write_text(TOO_LARGE)
    out = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    errno_text, filename, strerror = out.stdout.splitlines()
    assert int(errno_text) == errno.EFBIG
    assert filename == str(path)
    assert strerror.startswith("cannot save the state (cannot write the temporary file "), strerror
    assert strerror.endswith(": File too large"), strerror
    assert sorted(os.listdir(tmp_path)) == ["too_large.py"]  # no file, no temporary file


# --------------------------------------------------------------------------- not regular files


def test_a_directory_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError, match="cannot save the state: Is a directory"):
        manager_with(A).save_state(tmp_path / "taken")
    with pytest.raises(IsADirectoryError):
        PositionManager(NO_CLIENT).load_state(tmp_path / "taken")
    assert sorted(os.listdir(tmp_path)) == ["taken"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "state.json"
    os.mkfifo(fifo)
    pm = PositionManager(NO_CLIENT)
    with pytest.raises(OSError, match="it is a FIFO, not a regular file") as info:
        run_with_timeout(lambda: pm.load_state(fifo), 10.0, "load_state of a FIFO")
    assert str(fifo) in str(info.value)
    assert len(pm.positions) == 0 and pm.events == []
    with pytest.raises(OSError, match="cannot save the state: it is a FIFO, not a regular file"):
        run_with_timeout(lambda: manager_with(A).save_state(fifo), 10.0, "save_state to a FIFO")
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="it is a character device, not a regular file"):
        run_with_timeout(lambda: PositionManager(NO_CLIENT).load_state("/dev/null"), 10.0)
    with pytest.raises(OSError, match="it is a character device, not a regular file"):
        manager_with(A).save_state("/dev/null")
    # A symlink to a device is the device.
    link = tmp_path / "state.json"
    link.symlink_to("/dev/null")
    with pytest.raises(OSError, match="character device"):
        manager_with(A).save_state(link)
    assert link.is_symlink()


# --------------------------------------------------------------------------- huge files

HUGE_FILE = """
import os, sys
from position_manager_rs import PositionManager, StateFileError
path = {path!r}
with open(path, "wb") as f:
    f.truncate({size})  # sparse: no disk used, but its size is what a read would allocate
pm = PositionManager(object())
try:
    pm.load_state(path)
except StateFileError as e:
    print("StateFileError", e)
print(len(pm.positions), len(pm.events))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs sparse files and RLIMIT_AS")
@pytest.mark.parametrize("size", [(1 << 30) + 1, 1 << 40], ids=["1GiB+1", "1TiB"])
def test_a_state_file_above_the_size_limit_is_refused_without_allocating(
    tmp_path: Path, size: int
) -> None:
    # Before: the whole claimed size was allocated up front, and 1 TiB aborted the process.
    path = tmp_path / "state.json"
    out = run_memory_limited(HUGE_FILE.format(path=str(path), size=size))
    refusal, counts = out.splitlines()
    assert refusal == (
        f"StateFileError {path}: the state file is {size} bytes, above the limit of "
        "1073741824 bytes (1 GiB); it was not read"
    )
    assert counts == "0 0"


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize("length", [200, 230, 255])
def test_any_name_length_the_file_system_takes_can_be_saved(tmp_path: Path, length: int) -> None:
    path = tmp_path / ("s" * (length - 5) + ".json")
    assert len(path.name.encode()) == length
    manager_with(A).save_state(path)
    manager_with(A, "ETH/USDT:USDT").save_state(path)  # replacing it too
    assert len(loaded(path).positions) == 2
    assert os.listdir(tmp_path) == [path.name]


def test_a_long_name_of_multibyte_characters(tmp_path: Path) -> None:
    path = tmp_path / ("é" * 125 + ".json")  # 255 bytes
    manager_with(A).save_state(path)
    assert list(loaded(path).positions) == [A]
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
def test_bytes_and_non_utf8_paths(tmp_path: Path) -> None:
    pm = manager_with(A)
    base = os.fsencode(tmp_path)
    raw = base + b"/caf\xe9-\xff.json"  # not UTF-8
    assert pm.save_state(raw) == 1
    assert list(loaded(raw).positions) == [A]
    as_text = os.fsdecode(raw)  # the str Python uses for it (surrogate escapes)
    assert list(loaded(as_text).positions) == [A]
    assert list(loaded(Path(as_text)).positions) == [A]
    assert pm.save_state(base + b"/plain.json") == 1
    assert sorted(os.listdir(base)) == sorted([b"caf\xe9-\xff.json", b"plain.json"])
    with pytest.raises(TypeError, match=r"path must be a str, bytes or os\.PathLike, got 3"):
        pm.save_state(3)  # type: ignore[arg-type]
    for nul in (base + b"/a\0b.json", os.fsdecode(base) + "/a\0b.json"):
        with pytest.raises(ValueError, match="path must not contain a NUL byte"):
            pm.save_state(nul)
        with pytest.raises(ValueError, match="path must not contain a NUL byte"):
            PositionManager(NO_CLIENT).load_state(nul)


# --------------------------------------------------------------------------- attributes


def test_attributes_only_their_json_text_can_carry_come_back(tmp_path: Path) -> None:
    pm = manager_with(A)
    p = pm.positions[A]
    deep: Any = "bottom"
    for _ in range(500):
        deep = [deep]
    values: dict[str, Any] = {
        "lone": "a\ud800b\udfff",
        "keyed": {"\udc80": 1},
        "huge": 10**400,
        "negative_huge": -(10**400),
        "deep": deep,
        "tiny_float": 5e-324,
    }
    for name, value in values.items():
        setattr(p, name, value)
    path = tmp_path / "state.json"
    assert pm.save_state(path) == 1
    back = loaded(path).positions[A]
    assert vars(back) == values


def test_an_attribute_json_cannot_write_is_skipped_and_the_book_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="TradingBot")
    pm = manager_with(A, "ETH/USDT:USDT")
    too_deep: Any = 1
    for _ in range(100_000):  # beyond json.dumps' recursion limit
        too_deep = [too_deep]
    pm.positions[A].too_deep = too_deep
    pm.positions[A].fine = "kept"
    setattr(pm.positions[A], "bad\udcffname", 1)  # a name the file cannot carry exactly
    path = tmp_path / "state.json"
    assert pm.save_state(path) == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "TradingBot"]
    assert messages == [
        "save_state: skipped attributes that are not JSON-serialisable: "
        f"{A} (too_deep, 'bad\\udcffname')"
    ]
    assert vars(loaded(path).positions[A]) == {"fine": "kept"}


class ExhaustsMemory(dict):
    """json.dumps asks a dict subclass for its items(): this one is out of memory."""

    def items(self) -> Any:
        raise MemoryError("no memory for this attribute")


def test_a_memory_error_while_serialising_is_raised_and_nothing_written(tmp_path: Path) -> None:
    pm = manager_with(A)
    path = tmp_path / "state.json"
    pm.save_state(path)
    before = path.read_bytes()
    pm.positions[A].big = ExhaustsMemory(a=1)
    with pytest.raises(MemoryError, match="no memory for this attribute"):
        pm.save_state(path)
    assert path.read_bytes() == before and temp_files(tmp_path) == []


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, MemoryError])
def test_an_interrupt_while_loading_is_raised_as_it_came(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]
) -> None:
    pm = manager_with(A, "ETH/USDT:USDT")
    pm.positions[A].strategy = "breakout"
    path = tmp_path / "state.json"
    pm.save_state(path)

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise interrupt("while loading")

    monkeypatch.setattr(json, "loads", interrupted)
    fresh = PositionManager(NO_CLIENT)
    with pytest.raises(interrupt):
        fresh.load_state(path)
    assert len(fresh.positions) == 0 and fresh.events == []
    monkeypatch.undo()
    assert fresh.load_state(path) == 2


def test_an_interrupt_while_saving_is_raised_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pm = manager_with(A)
    pm.positions[A].strategy = "breakout"
    path = tmp_path / "state.json"
    pm.save_state(path)
    before = path.read_bytes()

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dumps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pm.save_state(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and temp_files(tmp_path) == []
