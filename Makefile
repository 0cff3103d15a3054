# One-word entry points. Everything runs in a local virtualenv (.venv) created on first use.
#   make demo    - build, install and run a paper-trading session (python -m position_manager_rs demo)
#   make verify  - build, install and run the cleanup scenarios (examples/verify_cleanup.py)
#   make test    - build, then cargo tests, pytest and every lint gate (what CI runs)
#   make lint    - rustfmt, clippy, ruff, mypy, stubtest
#   make bench   - benchmarks (see docs/benchmarks.md)
#   make dev     - (re)build and install the package into .venv

VENV ?= .venv
PY := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: dev demo test lint bench verify clean

$(VENV)/.ready: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.9,<2" "pytest>=7" "pytest-timeout>=2" "ruff>=0.6" "mypy>=1.10" "ccxt>=4.5,<5" pandas matplotlib "hypothesis>=6"
	touch $@

dev: $(VENV)/.ready
	$(VENV)/bin/maturin develop --release -q

demo: dev
	$(PY) -m position_manager_rs demo

verify: dev
	$(PY) examples/verify_cleanup.py

test: dev
	cargo test --workspace
	$(PY) -m pytest
	$(MAKE) lint

lint: $(VENV)/.ready
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/ruff format --check python tests benches examples
	$(VENV)/bin/mypy python tests benches examples
	$(PY) -m mypy.stubtest position_manager_rs._core --allowlist stubtest-allowlist.txt

bench: dev
	$(PY) benches/bench_update.py
	$(PY) benches/bench_adaptive.py

clean:
	rm -rf $(VENV) target
