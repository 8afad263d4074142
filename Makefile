# Set-up, tests and demo on a plain Python 3.11 + pip machine (no ROS apt packages needed).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned for the CPU set-up; the package itself only asks for torch>=2.1.
TORCH ?= torch==2.13.0

.PHONY: venv lint test demo clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py setup.cfg package.xml pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[ros,test]"
	touch $@

# The linter and the type checker first (ruff and mypy, both configured in pyproject.toml),
# then the tests.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

# The main job on the shipped defaults: synthetic cameras -> fusion node over DDS, recorded to MCAP,
# with a contact sheet and throughput/latency figures (see README).
demo: venv
	$(VENV)/bin/sosmaskfuse demo --out demo_output

clean:
	rm -rf $(VENV) build *.egg-info
