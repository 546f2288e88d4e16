# Set-up and everyday commands. Each target creates or reuses .venv and installs what it needs.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rtplan demo

# pytest exit code 5 (no tests collected) is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not llm"; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Physics (fit check, a few seconds; the fit from its own result, under a minute), speed and
# memory per scenario, the broad columns' DVH cost, TG-119 and the lung slab against pyRadPlan
# (its venv is made by bench/setup_peer.sh when missing; about 20 and 5 min), then calibration
# and cohort. Each writes bench/results/<name>.json.
bench: $(STAMP)
	$(PY) -m bench.beam_check
	$(PY) -m bench.fit_beam
	$(PY) -m bench.inner_loop
	$(PY) -m bench.broad_columns
	$(PY) -m bench.tg119
	$(PY) -m bench.peer_lung
	$(PY) -m bench.calibration
	$(PY) -m bench.agent_cohort

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
