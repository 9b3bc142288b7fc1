# HomeCall: the two commands users rely on are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SCENARIO ?= scenarios/on-time-and-late.json
SPEED ?= 600

.PHONY: setup system-deps test test-long demo lint bench clean

setup: system-deps $(VENV)/.installed

system-deps:
	@bash scripts/install-system-deps.sh

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

test: setup lint
	$(PY) -m pytest -q

test-long: setup
	$(PY) -m pytest -q -m slow --run-slow

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

demo: setup
	$(VENV)/bin/homecall demo --scenario $(SCENARIO) --speed $(SPEED)

bench: setup
	$(VENV)/bin/homecall bench all

clean:
	rm -rf $(VENV) var build *.egg-info
