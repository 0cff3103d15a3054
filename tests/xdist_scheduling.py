"""How pytest-xdist spreads the suite over its workers (``make test``: ``-n 4 --dist loadfile``).

``--dist loadfile`` runs every test module whole on one worker, in its own order, as it runs
alone: a module's tests may share what the module sets up, and run in the order they are
written. The exception is :data:`SPREAD_MODULES`: their tests go to the workers one by one, so
that the long runs, most of the suite's time, are shared out instead of holding one worker for
several minutes. A module may be listed only if each of its tests makes everything it uses
itself (``tmp_path``, a fresh PostgreSQL database, its own child processes, a venue on an
ephemeral port, its seeds) and depends on no other test of the module.

Any test of any module may run beside any other, on another worker: nothing in the suite may
use a fixed port, a fixed path outside ``tmp_path``, or PostgreSQL beyond its own database
(``journal_helpers.fresh_postgres``) without keeping to itself. Process-wide state (the frozen
clock, logging, signal handlers, environment variables, resource limits) is each worker's own.

Loaded by tests/conftest.py; without pytest-xdist (Python 3.9's run in .ci/oldest-python), or
with ``-p no:xdist`` (one process, as when debugging), it does nothing. ``--dist loadgroup``
is not used: on pytest 9.2 its ``xdist_group`` marks silently stopped grouping
(pytest-dev/pytest-xdist#1386).
"""

from __future__ import annotations

from typing import Any

import pytest

#: Test modules (file names under tests/) whose tests are spread over the workers one by one.
SPREAD_MODULES = frozenset({"test_venue_soak.py", "test_venue_crash_soak.py"})

try:
    from xdist.scheduler import LoadFileScheduling
except ImportError:  # pragma: no cover - the plain run
    LoadFileScheduling = None


if LoadFileScheduling is not None:

    class ModuleScheduling(LoadFileScheduling):
        """``--dist loadfile``, but each test of a module in :data:`SPREAD_MODULES` is a work
        unit of its own."""

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("::", 1)[0].rsplit("/", 1)[-1] in SPREAD_MODULES:
                return nodeid
            scope: str = super()._split_scope(nodeid)
            return scope

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        if config.getoption("dist") == "loadfile":
            return ModuleScheduling(config, log)
        return None
