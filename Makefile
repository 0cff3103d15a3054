# One-word entry points. Everything runs in a local virtualenv (.venv) created on first use.
#   make demo    - build, install and run a paper-trading session (python -m position_manager_rs demo)
#   make verify  - build, install and run the cleanup scenarios (examples/verify_cleanup.py)
#   make test    - build, then cargo tests, pytest and every lint gate (what CI runs)
#   make lint    - rustfmt, clippy, rustdoc, ruff, mypy, stubtest
#   make bench   - benchmarks (see docs/benchmarks.md)
#   make dev     - (re)build and install the package into .venv, with the dev tools
#   make wheel   - a portable wheel in dist/ (abi3, manylinux2014, stripped; zig from PyPI)
#   make wheel-smoke - install that wheel into a fresh virtualenv with no Rust on PATH and run it
#
# demo and verify install only the build tool (maturin); dev, test and lint add the dev tools.

VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))
# pip: no progress chatter, no "Ignoring ... markers" lines, no upgrade nagging.
export PIP_QUIET := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Every pip install takes the exact versions CI last passed with (.ci/constraints.txt; rewritten by
# `bash .ci/constraints`), so a fresh machine installs a tested set, not the day's releases.
# UNPINNED=1 takes the newest releases within the ranges below instead.
ifeq ($(UNPINNED),)
export PIP_CONSTRAINT := $(abspath .ci/constraints.txt)
else
export PIP_CONSTRAINT :=
endif

# What builds the package, and what develops it (the "dev" extra of pyproject.toml; a test
# keeps the two lists equal).
BUILD_TOOLS := "maturin>=1.9,<2"
DEV_TOOLS := "pytest>=7" "pytest-timeout>=2" "pytest-xdist>=3.8,<4" "ruff>=0.6" "mypy>=1.10" "ccxt>=4.5.90,<5" pandas matplotlib "hypothesis>=6"

# The wheel: built in its own virtualenv (zig, ~400 MB, stays out of .venv).
WHEEL_VENV ?= .venv-wheel
WHEEL_TOOLS := "maturin>=1.9,<2" "ziglang>=0.13,<0.18"

.PHONY: dev demo test lint bench verify build check-cargo wheel wheel-smoke clean print-tools print-constraint

check-cargo:
	@command -v cargo >/dev/null 2>&1 || { \
	  echo "error: building position_manager_rs needs Rust's cargo, and it is not on PATH." >&2; \
	  echo "  Install Rust with rustup (https://rustup.rs), open a new shell, run make again;" >&2; \
	  echo "  or install a prebuilt wheel (make wheel on a machine with Rust): pip install dist/*.whl" >&2; \
	  exit 1; }

$(VENV)/.base: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(BUILD_TOOLS)
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PY) -m pip install $(DEV_TOOLS)
	touch $@

# Builds the extension (release) and installs the package into $(VENV), editable; the build's
# output goes to $(VENV)/build.log and is shown only when it fails.
build: check-cargo $(VENV)/.base
	@echo "building position_manager_rs (Rust, release) into $(VENV) ..."
	@$(VENV)/bin/maturin develop --release -q >$(VENV)/build.log 2>&1 || { cat $(VENV)/build.log; exit 1; }

dev: check-cargo $(VENV)/.dev build

demo: build
	$(PY) -m position_manager_rs demo

verify: build
	$(PY) examples/verify_cleanup.py

# pytest runs on PYTEST_WORKERS processes (pytest-xdist), each test module whole on one of them,
# the long venue runs spread test by test (tests/xdist_scheduling.py). Much of the suite's time
# is waiting (child processes killed and restarted, timeouts): it needs 540-650 s of CPU, and
# one process took 1050 s in CI, so it takes more workers than cores. On two shared cores
# (2026-12) 2 workers ran it in 550 s, 3 in 470-600 s, 4 in 480-500 s. 0: one process.
PYTEST_WORKERS ?= 4

test: dev
	cargo test --workspace
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=20
	$(MAKE) lint

lint: check-cargo $(VENV)/.dev
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/ruff format --check python tests benches examples
	$(VENV)/bin/mypy python tests benches examples
	$(PY) -m mypy.stubtest position_manager_rs._core --allowlist stubtest-allowlist.txt

bench: dev
	$(PY) benches/bench_update.py
	$(PY) benches/bench_adaptive.py
	$(PY) benches/bench_cold.py
	$(PY) benches/bench_latency.py
	$(PY) benches/bench_reads.py

$(WHEEL_VENV)/.ready:
	python3 -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --upgrade pip
	$(WHEEL_VENV)/bin/python -m pip install $(WHEEL_TOOLS)
	touch $@

# maturin runs `python3 -m ziglang`: the wheel virtualenv comes first on PATH.
wheel: check-cargo $(WHEEL_VENV)/.ready
	rm -f dist/position_manager_rs-*.whl
	PATH="$(abspath $(WHEEL_VENV))/bin:$$PATH" VIRTUAL_ENV="$(abspath $(WHEEL_VENV))" \
	  $(WHEEL_VENV)/bin/maturin build --release --zig --compatibility manylinux2014 --strip --out dist
	@ls -l dist/position_manager_rs-*.whl

wheel-smoke:
	bash .ci/wheel-smoke

# The tool lists, quoted as above (for .ci/constraints), and the constraints file pip reads.
print-tools:
	@echo $(foreach tool,$(BUILD_TOOLS) $(DEV_TOOLS) $(WHEEL_TOOLS),'$(tool)')

print-constraint:
	@echo "$$PIP_CONSTRAINT"

clean:
	rm -rf $(VENV) $(WHEEL_VENV) target dist
