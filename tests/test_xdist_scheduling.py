"""``make test``'s parallel run spreads the suite as tests/xdist_scheduling.py says: a module
whole on one worker, the modules of ``SPREAD_MODULES`` test by test. A pytest-xdist release
that stopped honouring the scheduler would run modules split over workers without a word
(``--dist loadgroup`` did: pytest-dev/pytest-xdist#1386), so a small suite is run here with
``-n 2 --dist loadfile`` and the plugin, and its work units are checked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("xdist")

TESTS = Path(__file__).resolve().parent

# The inner run's controller writes, at its end, which scheduler it used and the work unit
# (scope) of each test; each inner test writes the worker it ran on.
INNER_CONFTEST = """
import json
import os
from pathlib import Path

OUT = Path(os.environ["PMRS_XDIST_OUT"])


def pytest_sessionfinish(session):
    dsession = session.config.pluginmanager.getplugin("dsession")
    if dsession is None:
        return  # a worker
    sched = dsession.sched
    scopes = {nodeid: sched._split_scope(nodeid) for nodeid in sched.collection}
    (OUT / "controller.json").write_text(json.dumps([type(sched).__name__, scopes]))
"""

INNER_TEST = """
import os
from pathlib import Path

import pytest


@pytest.mark.parametrize("i", range(4))
def test_it(i):
    out = Path(os.environ["PMRS_XDIST_OUT"]) / f"{__name__}-{i}"
    out.write_text(os.environ["PYTEST_XDIST_WORKER"])
"""


def test_modules_run_whole_on_one_worker_but_the_spread_ones_test_by_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from xdist_scheduling import SPREAD_MODULES

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("PMRS_XDIST_OUT", str(out))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    spread = sorted(SPREAD_MODULES)[0].removesuffix(".py")
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(**{"test_whole": INNER_TEST, "test_other": INNER_TEST, spread: INNER_TEST})
    result = pytester.runpytest_subprocess(
        "-p", "xdist_scheduling", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile"
    )
    result.assert_outcomes(passed=12)

    scheduler, scopes = json.loads((out / "controller.json").read_text())
    assert scheduler == "ModuleScheduling"
    for nodeid, scope in scopes.items():
        module = nodeid.split("::", 1)[0]
        assert scope == (nodeid if module == f"{spread}.py" else module), (nodeid, scope)
    # A whole module ran on one worker.
    for module in ("test_whole", "test_other"):
        workers = {(out / f"{module}-{i}").read_text() for i in range(4)}
        assert len(workers) == 1, (module, workers)
