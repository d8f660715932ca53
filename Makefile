# Each target bootstraps what it needs first (as root): apt packages, kernel headers, the venv.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: bootstrap demo test unit lint bench bench-quick deb clean

bootstrap:
	@./scripts/bootstrap.sh

demo: bootstrap
	@$(PY) -m trustfence.demo

# The tests also need crewai, which cannot share the venv's pins: installed apart, into build/crewai.
test:
	@TF_CREWAI=1 ./scripts/bootstrap.sh
	@$(VENV)/bin/pytest -q
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory bench-quick

unit: bootstrap
	@$(VENV)/bin/pytest -q tests/unit

lint: bootstrap
	@$(PY) scripts/typecheck.py

BENCHES := latency classify policy sandbox journal store dashboard fairness workers

bench: bootstrap
	@set -e; for b in $(BENCHES); do $(PY) bench/$$b.py; done

# Each bench once, a few iterations: fails only when a bench itself breaks, never on a missed target.
bench-quick: bootstrap
	@set -e; for b in $(BENCHES); do echo "bench-quick: $$b"; $(PY) bench/$$b.py --quick >/dev/null; done

# trustfence_<version>_<arch>.deb in build/ (DEB_DIR=... elsewhere; DEB_PYTHONS: the Pythons it has wheels for)
deb: bootstrap
	@./scripts/build-deb.sh

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache
