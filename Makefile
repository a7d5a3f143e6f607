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
## CPU per node, SSH setup per host), then the fleet tables of bench/RESULTS.md through bench/fleet.sh, the fleet
## benchmark's own entry point (bench/fleet_bench.py with the arguments its owner documents; root:
## network namespaces and sshd; ~45 min), then its quiet rows (`fleet.sh quiet`, ~8 min).
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench: $(STAMP)
	$(BIN)/python bench/local_bench.py --runs 41 --ansible-runs 7 --json bench/results-local.json
	$(BIN)/python bench/cpu_bench.py --rounds 30 --json bench/results-cpu-local.json
	$(BIN)/python bench/ssh_setup_bench.py --lines 1000 --json bench/results-ssh-setup.json
	$(SUDO) sh bench/fleet.sh
	$(SUDO) sh bench/fleet.sh quiet

lint: $(STAMP)
	shellcheck -s sh nodecheck/probe/probe.sh

clean:
	rm -rf $(VENV) .pytest_cache
