# Every target makes its own virtualenv, so a fresh clone needs only python3 (>=3.10).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv scan test lint test-lab bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## scan: set up and scan this machine (table on a TTY, JSON otherwise)
scan: $(STAMP)
	$(BIN)/nodecheck scan; rc=$$?; [ $$rc -le 3 ] || exit $$rc

## test: set up (system packages when root, venv) and run the whole test suite
test: $(STAMP)
	sh tests/setup-system.sh
	bash tests/k8slab/build.sh >/dev/null   # cached by version: a warm machine skips the Go build
	$(BIN)/pytest -q

## bench: every table of bench/RESULTS-local.md (start-up, local scan vs ansible -m setup, controller
## CPU per node), then the fleet lab tables of bench/RESULTS.md (root: network namespaces and sshd).
## FLEET_ARGS is the command line bench/RESULTS.md documents for its latest table.
FLEET_ARGS ?= --sizes 200 --rtts 0,50 --tools nodecheck,ansible,ansible-kex,pyinfra --no-local --json bench/results-200-after-probe-fix.json
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench: $(STAMP)
	$(BIN)/python bench/local_bench.py --runs 21 --json bench/results-local.json
	$(BIN)/python bench/cpu_bench.py --rounds 30 --json bench/results-cpu-local.json
	$(SUDO) $(BIN)/python bench/fleet_bench.py $(FLEET_ARGS)

lint: $(STAMP)
	shellcheck -s sh nodecheck/probe/probe.sh

clean:
	rm -rf $(VENV) .pytest_cache
