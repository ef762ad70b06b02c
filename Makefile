# `make demo` and `make test` each install what they need first, into .venv.
# A stamp per extra set reinstalls only when pyproject.toml changes.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test bench install clean browser

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-train: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[train]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) -e '.[train,dev]'
	@touch $@

install: $(VENV)/.installed-train

# Debian's chromium for the browser tests; skipped (the tests then say why) where apt is absent.
browser:
	@bash tests/install_browser.sh

demo: $(VENV)/.installed-train
	$(BIN)/harness demo

test: $(VENV)/.installed-dev browser
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .harness .pytest_cache
