# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# torch goes in first and pinned: an unpinned torch would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
ARGS   ?=
PYTEST_ARGS ?= -m "not slow"

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export WANDB_SILENT ?= true

.PHONY: venv demo report-check test test-all bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,cluster]"
	touch $(STAMP)

demo: venv
	$(PY) -m rlhf.study $(ARGS)

report-check: venv
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m rlhf.study.report_check $(REPORT)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: venv
	$(PY) -m pytest

bench: venv
	$(PY) bench/sampling.py

clean:
	rm -rf outputs multirun wandb .pytest_cache
