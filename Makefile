# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   -- the end-to-end demo
#   make test   -- the test suite
# and `make check` runs the static checks (ruff, mypy, import-linter contracts).
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: venv demo test test-compose check bench proto clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: 2.13.0 is the CPU build on this machine's disk (an unpinned
	# torch pulls a multi-GB CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	# CrypTen 0.4.1 declares `sklearn` (dead) and torchvision: install it without deps;
	# its real runtime needs are in pyproject.toml.
	$(PY) -m pip install -q --no-deps crypten==0.4.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mutualmind demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=20

# The compose cluster as containers under podman (installs podman as root if missing,
# builds the images; docs/operations.md). `make test` leaves it out (`-m "not compose"`).
test-compose: $(STAMP)
	$(PY) -m pytest -q -m compose tests/compose

# Static checks, configured in pyproject.toml; the tools are pinned in the `dev` extra.
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Benchmarks print JSON (they are scripts, not timed tests); see docs/performance.md.
bench: $(STAMP)
	$(PY) bench/ledger.py --json
	$(PY) bench/upload.py --json
	$(PY) bench/loo.py --providers 8 --json
	$(PY) bench/train.py --model logistic --dataset breast_cancer --json

proto: $(STAMP)
	$(PY) scripts/gen_proto.py

clean:
	rm -rf $(VENV)
