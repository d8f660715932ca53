# Each target bootstraps what it needs first (as root): apt packages, kernel headers, the venv.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: bootstrap demo test unit lint bench deb clean

bootstrap:
	@./scripts/bootstrap.sh

demo: bootstrap
	@$(PY) -m trustfence.demo

test: bootstrap
	@$(VENV)/bin/pytest -q
	@$(MAKE) --no-print-directory lint

unit: bootstrap
	@$(VENV)/bin/pytest -q tests/unit

lint: bootstrap
	@$(PY) scripts/typecheck.py

bench: bootstrap
	@$(PY) bench/latency.py
	@$(PY) bench/classify.py
	@$(PY) bench/policy.py
	@$(PY) bench/sandbox.py

# trustfence_<version>_<arch>.deb in build/ (DEB_DIR=... elsewhere; DEB_PYTHONS: the Pythons it has wheels for)
deb: bootstrap
	@./scripts/build-deb.sh

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache
