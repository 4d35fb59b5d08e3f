# Attention, step by step — the two commands of the README, and the instructor's.
#   make course   build the environment, grade the bundled demo class headless, open JupyterLab on course/
#   make test     build the environment and run every check CI runs
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB_ARGS ?=

.PHONY: course test env lab demo release bench bench-grading discrimination clean-grading test-e2e

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

env: $(VENV)/.installed

course: env demo lab

demo: env
	$(BIN)/python -m autograder grade

# JupyterLab refuses to run as root without --allow-root (containers, CI-like machines); nbgrader's extensions
# read the course's configuration from autograder/nbgrader_config.py.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: env
	JUPYTER_CONFIG_PATH=$(CURDIR)/autograder $(BIN)/jupyter lab --notebook-dir=course $(ROOT_FLAG) $(LAB_ARGS)

test: env
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The learner's and the instructor's paths end to end (tests/e2e): JupyterLab in headless Chromium, a Colab-like
# venv, the instructor's terminal. Needs Debian's chromium (installed here when missing; root or sudo).
# Screenshots land in .bench/e2e/.
test-e2e: env
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; fi
	$(BIN)/python -m pytest tests/e2e

release: env
	$(BIN)/python -m autograder release

bench: env
	$(BIN)/python -m benchmarks.run_notebooks

bench-grading: env
	$(BIN)/python -m benchmarks.grading

discrimination: env
	$(BIN)/python -m autograder discrimination

clean-grading:
	rm -rf .grading
