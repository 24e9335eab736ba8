# The course in two commands:  `make course`  and  `make test`  (each sets everything up first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.coursekit-installed
# The local MNIST mirror, when there is one beside the project (see README: Data).
MIRROR := $(wildcard ../shared/data/MNIST/raw)
export COURSEKIT_DATA ?= $(if $(MIRROR),$(abspath ../shared/data),)

.PHONY: setup course test budgets notebooks-all-modes wheel test-fast lab lab-instructor release zoo examples clean site doctor browser-deps test-browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)            ## create .venv with coursekit, the course stack and the test tools

course: $(STAMP)           ## release notebooks, execute lectures, autograde examples, print grades
	$(VENV)/bin/coursekit course

test: $(STAMP)             ## the whole test suite (tests/conftest.py: slow ones first, shared module fixtures once)
	$(VENV)/bin/pytest -n 2 --dist loadgroup --durations=30

budgets: $(STAMP)          ## every lecture in default (learner) mode, timed against its budget (report; fails on errors)
	$(VENV)/bin/python benchmarks/bench_notebooks.py --mode default --report-budgets --out build/notebook_budgets_full.md

notebooks-all-modes: $(STAMP)  ## every lecture, fast AND default budgets, embedded digits AND the mirror; claims listed (fails on errors)
	$(VENV)/bin/python benchmarks/bench_notebooks.py --mode both --data both --jobs 2 --report-budgets --out build/notebooks_all_modes.md

wheel: $(STAMP)            ## dist/coursekit-*.whl: the package with its weights and digits (for Colab or pip)
	$(VENV)/bin/pip wheel --no-deps --no-build-isolation -w dist .

test-fast: $(STAMP)        ## skip the slow tests (notebooks executed, submissions autograded, > ~5 s of training)
	$(VENV)/bin/pytest -n 2 --dist loadgroup -m "not slow" --durations=15

lab: $(STAMP)              ## JupyterLab on the student notebooks (nbgrader's instructor tools off, this session only)
	$(PY) -m coursekit.lab notebooks/

lab-instructor: $(STAMP)   ## JupyterLab on the course folder with nbgrader's instructor tools (Create Assignment, formgrader)
	$(PY) -m coursekit.lab --instructor .

release: $(STAMP)          ## regenerate notebooks/ from solutions/ (and the example submissions)
	$(VENV)/bin/coursekit release
	$(PY) scripts/make_example_submissions.py

zoo: $(STAMP)              ## retrain the shipped models (needs the full MNIST in COURSEKIT_DATA)
	$(VENV)/bin/coursekit zoo build

site: $(STAMP)             ## static HTML course site in build/site/ (every lecture in the learner's default budgets; FAST=1: a quick preview)
	$(VENV)/bin/coursekit site $(if $(FAST),--fast,)

doctor: $(STAMP)           ## is this machine ready? Python, packages, widgets, weights, data, device
	$(VENV)/bin/coursekit doctor

browser-deps: $(STAMP)     ## Debian's Chromium (needs root/apt) and playwright, for tests/test_browser.py
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(PY) -m pip install --quiet playwright

test-browser: browser-deps ## widgets in a real JupyterLab + headless Chromium; screenshots in build/browser/
	$(VENV)/bin/pytest -q tests/test_browser.py

clean:
	rm -rf build submitted autograded feedback gradebook.db
