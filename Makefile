# Attention, step by step — the two commands of the README, and the instructor's.
#   make course   build the environment, grade the bundled demo class headless, open JupyterLab on course/
#   make test     build the environment and run every check CI runs
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB_ARGS ?=

.PHONY: course test env lab demo release bench discrimination clean-grading

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

env: $(VENV)/.installed

course: env demo lab

demo: env
	$(BIN)/python -m autograder grade

lab: env
	$(BIN)/jupyter lab --notebook-dir=course $(LAB_ARGS)

test: env
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

release: env
	$(BIN)/python -m autograder release

bench: env
	$(BIN)/python -m benchmarks.run_notebooks

discrimination: env
	$(BIN)/python -m autograder discrimination

clean-grading:
	rm -rf .grading
