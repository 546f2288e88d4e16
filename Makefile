# Set-up and everyday commands. Each target creates or reuses .venv and installs what it needs.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint venv clean plugin mono dicom3tools

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rtplan demo

# pytest exit code 5 (no tests collected) is not a failure of the suite.
test: $(STAMP) plugin dicom3tools
	$(PY) -m pytest -q -m "not slow and not llm"; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Mono's C# compiler (Debian's mono-devel) for the C# layer's tests, installed when missing
# (as root, or through sudo).
mono:
	@command -v mcs >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" -ne 0 ] && echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y mono-devel; }

# dicom3tools' dciodvfy, which validates the exported RT Dose, RT Plan, CT and RT Structure Set
# files in the tests (#13), installed when missing.
dicom3tools:
	@command -v dciodvfy >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" -ne 0 ] && echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y dicom3tools; }

# The ESAPI stubs, their test assembly and the PlanBridge, built with mcs into plugin_csharp/bin/mono
# (the workstation build is plugin_csharp/PlanBridge.csproj; it is not built here).
plugin: mono $(STAMP)
	$(PY) plugin_csharp/build_mono.py

# Physics (fit check, a few seconds; the fit from its own result, under a minute), speed and
# memory per scenario, the broad columns' DVH cost, TG-119 and the lung slab against pyRadPlan
# (its venv is made by bench/setup_peer.sh when missing; about 20 and 5 min), then calibration
# and cohort; then the DRL environment and policies, the knowledge cards against the rule policy,
# every policy side by side with BO, and Ray against the local pool. Each
# writes bench/results/<name>.json.
bench: $(STAMP)
	$(PY) -m bench.beam_check
	$(PY) -m bench.fit_beam
	$(PY) -m bench.inner_loop
	$(PY) -m bench.broad_columns
	$(PY) -m bench.tg119
	$(PY) -m bench.peer_lung
	$(PY) -m bench.calibration
	$(PY) -m bench.agent_cohort
	$(PY) -m bench.drl_train
	$(PY) -m bench.drl_eval
	for s in prostate-basic liver prostate-complex; do $(PY) -m bench.knowledge run --scenarios $$s --name knowledge_$$s || exit 1; done
	$(PY) -m bench.bo_vs_knowledge
	$(PY) -m bench.ray_parity

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
