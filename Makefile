# The whole set-up: `make demo` or `make test` on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-fast clean

install: $(STAMP)

# torch first, pinned to the version the tests run on, so pip never resolves a CUDA build
# (pyproject.toml allows a range, so an existing environment keeps its own torch).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The zoo on the bundled digits: PCA, five autoencoders, a VAE and a GAN (each also conditional) trained, evaluated and
# compared in one HTML report (under two minutes on two cores; a second `make demo` keeps finished runs).
DEMO := runs/zoo
demo: install
	$(PY) -m genmodels zoo --data digits --out $(DEMO)
	@echo "Done. Open the report: $(DEMO)/report.html (every run directory is under $(DEMO)/)"

# The whole suite: what CI runs (.ci/run).
test: install browser
	$(PY) -m pytest -q

# The suite without the tests marked slow (pyproject.toml, [tool.pytest.ini_options] markers): those that
# start a subprocess (the `python -m genmodels` entry point, a kill, a second writer, a memory cap, the
# explorer's server), torchrun, headless Chromium or the notebook's kernel. For a quick check while working;
# `make test` before a commit.
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# tests/test_report.py and tests/test_zoo.py render reports in headless Chromium and tests/test_explore.py
# drives the explorer through chromedriver. As root with apt-get (CI on a fresh Debian machine) install both
# when missing; elsewhere do nothing, and those browser tests are skipped with the reason.
browser:
	@if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver for the browser tests (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "could not install chromium: the browser tests will be skipped"; \
	fi

clean:
	rm -rf $(VENV) runs
