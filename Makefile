# One command to run, one to test; both set up what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint setup clean

$(STAMP): pyproject.toml
	@test -x /usr/bin/kcat || (apt-get install -y -q kcat >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q kcat >/dev/null)) || echo "kcat not installed (optional)"
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	install -m 755 scripts/kcat $(VENV)/bin/kcat
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/itil up

test: $(STAMP)
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) var .pytest_cache
