# hrc_perception: `make test` (what CI runs), `make bench`, `make setup`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt setup.py scripts/system_deps.sh
	scripts/system_deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q test

bench: setup
	$(VENV)/bin/hrc-perception bench synth --json benchmarks/results/synth.json

clean:
	rm -rf $(VENV) out build install log
