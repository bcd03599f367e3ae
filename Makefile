# The whole set-up: `make demo` or `make test` on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test clean

install: $(STAMP)

# torch first, pinned, so pip never resolves a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# A VAE with a 2-D latent on the bundled digits, then every picture of it and its test numbers.
DEMO := runs/demo
demo: install
	$(PY) -m genmodels train vae --data digits --latent-dim 2 --epochs 100 --out $(DEMO) --overwrite
	$(PY) -m genmodels sample $(DEMO) -n 64
	$(PY) -m genmodels reconstruct $(DEMO)
	$(PY) -m genmodels interpolate $(DEMO)
	$(PY) -m genmodels latent $(DEMO)
	$(PY) -m genmodels evaluate $(DEMO) --importance-samples 1000
	@echo "Done. Pictures: $(DEMO)/loss.png and $(DEMO)/images/*.png; numbers: $(DEMO)/eval.json"

test: install browser
	$(PY) -m pytest -q

# tests/test_report.py renders the report in headless Chromium. As root with apt-get (CI on a fresh
# Debian machine) install it when missing; elsewhere do nothing, and that one test is skipped.
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the report's browser test (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "could not install chromium: the browser test will be skipped"; \
	fi

clean:
	rm -rf $(VENV) runs
