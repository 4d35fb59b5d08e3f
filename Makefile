# Attention, step by step — the two commands of the README, and the instructor's.
#   make course   build the environment, grade the bundled demo class headless, open JupyterLab on course/
#   make test     build the environment and run every check CI runs
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LAB_ARGS ?=

# setup/make_venv.sh builds the venv with uv (the version requirements-dev.txt pins, bootstrapped from PyPI into the
# user's cache; pip where uv can't be had) from requirements.lock, one universal lock for Python 3.11 through 3.13 (`make lock` regenerates it).
# torch's GPU libraries: resolved with torch, but installed only where the torch build asks for them. torch itself is
# kept out of the lock: each platform installs its own build of the version requirements.txt pins.
GPU_PACKAGES := torch triton cuda-bindings cuda-pathfinder cuda-toolkit nvidia-cublas nvidia-cuda-cupti \
  nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver \
  nvidia-cusparse nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: course test unit test-quick env sandbox-tool lab demo release bench bench-load bench-grading bench-class discrimination clean-grading test-e2e lock hub hub-install lab-instructor

$(VENV)/.installed: requirements.lock requirements.txt requirements-dev.txt pyproject.toml setup/make_venv.sh
	setup/make_venv.sh $(PYTHON) $(VENV)
	touch $@

# The universal lock: every package for Python 3.11-3.13 on Linux, macOS and Windows, with markers where versions
# differ (soupsieve 4 needs Python >= 3.11.5). The existing lock's versions are kept where they still fit.
lock: env
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 requirements.txt requirements-dev.txt -o requirements.lock $(foreach p,$(GPU_PACKAGES),--no-emit-package $(p))

env: $(VENV)/.installed

course: env demo lab

demo: env sandbox-tool
	$(BIN)/python -m autograder grade

# Grading kernels run under bubblewrap: Debian's is installed when missing (elsewhere, e.g. macOS, grading refuses
# untrusted work and the bundled demo class is graded as the instructor's own).
sandbox-tool:
	@command -v bwrap >/dev/null || ! command -v apt-get >/dev/null || { \
	  echo "installing Debian's bubblewrap (the grading sandbox)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bubblewrap; }

# JupyterLab refuses to run as root without --allow-root (containers, CI-like machines); nbgrader's extensions
# read the course's configuration from autograder/nbgrader_config.py.
ROOT_FLAG := $(if $(SUDO),,--allow-root)

# The learner's JupyterLab: Validate, and none of nbgrader's instructor tools (lab/learner turns them off).
lab: env
	JUPYTER_CONFIG_PATH=$(CURDIR)/lab/learner:$(CURDIR)/autograder $(BIN)/jupyter lab --notebook-dir=course $(ROOT_FLAG) $(LAB_ARGS)

# The instructor's JupyterLab, on the whole project: nbgrader's formgrader and Create Assignment as well.
lab-instructor: env
	JUPYTER_CONFIG_PATH=$(CURDIR)/autograder $(BIN)/jupyter lab --notebook-dir=. $(ROOT_FLAG) $(LAB_ARGS)

test: env sandbox-tool
	$(BIN)/ruff check .
	$(BIN)/python -m pytest --durations=15

# The checks that start no Jupyter kernel (a minute): probes and judgements in-process, preflight, review, helpers.
unit: env
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not kernel"

# The quick checks and one notebook (00, solution + catalog) on another interpreter, in its own venv. CI runs it on
# Debian's own Python, an ordinary user's only interpreter on the course machines:
#   make test-quick PYTHON=/usr/bin/python3.11 VENV=.venv-debian
QUICK_TESTS := tests/test_environment.py tests/test_helpers.py tests/test_setup_cell.py \
  "tests/test_notebooks.py::test_solution_runs_green_and_catalog_is_fully_discriminated[00_orientation]"
test-quick: env sandbox-tool
	$(BIN)/python -c 'import platform, sys, torch; print("test-quick on Python", platform.python_version(), \
	  sys.executable, "torch", torch.__version__)'
	$(BIN)/python -m pytest -q $(QUICK_TESTS)

# The learner's and the instructor's paths end to end (tests/e2e): JupyterLab in headless Chromium, a Colab-like
# venv, the instructor's terminal. Needs Debian's chromium (installed here when missing; root or sudo).
# Screenshots land in .bench/e2e/.
test-e2e: env
	@if [ ! -x /usr/bin/chromium ]; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; fi
	$(BIN)/python -m pytest tests/e2e --durations=15

release: env
	$(BIN)/python -m autograder release

# The class server (hub/README.md): JupyterHub with the machine's accounts, nbgrader's exchange, the shared course
# environment under HUB_PREFIX. Installs as root (sudo for an ordinary user), then serves on HUB_URL until Ctrl-C.
HUB_PREFIX   ?= /opt/attention-steps
HUB_URL      ?= http://127.0.0.1:8000
HUB_EXCHANGE ?= /srv/nbgrader/exchange
HUB_ENV := ATTENTION_STEPS_HUB_PREFIX=$(HUB_PREFIX) ATTENTION_STEPS_HUB_URL=$(HUB_URL) \
  ATTENTION_STEPS_EXCHANGE=$(HUB_EXCHANGE)

hub-install: sandbox-tool
	$(SUDO) env $(HUB_ENV) hub/install.sh

hub: hub-install
	$(SUDO) env $(HUB_ENV) $(HUB_PREFIX)/venv/bin/jupyterhub -f hub/jupyterhub_config.py

# make bench: every solution notebook in full and on the fast path, median of 3 runs each, on an idle machine;
# make bench-load: the same beside one busy-looping process per CPU. BENCH_ARGS adds options (e.g. 07_transformer
# --full-only --threads 2; see benchmarks/run_notebooks.py).
BENCH_ARGS ?=
bench: env
	$(BIN)/python -m benchmarks.run_notebooks --repeat 3 $(BENCH_ARGS)

bench-load: env
	$(BIN)/python -m benchmarks.run_notebooks --repeat 3 --load $(BENCH_ARGS)

bench-grading: env
	$(BIN)/python -m benchmarks.grading

# A synthetic class of notebook 05 (200 submissions from its catalog) graded by plain nbgrader, --jobs 1, --jobs 2 and
# a local Dask cluster of two workers, one after the other; about an hour on 2 cores (CLASS_ARGS=--count 40: minutes).
bench-class: env sandbox-tool
	$(BIN)/python -m benchmarks.class_grading $(CLASS_ARGS)

discrimination: env
	$(BIN)/python -m qa discrimination

clean-grading:
	rm -rf .grading
