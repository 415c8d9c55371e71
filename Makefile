# One-command set-up, demo and tests. Everything the project needs is installed from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist
OUT ?= runs/demo

.PHONY: setup data demo test lint bench docs docs-check chromium clean help

help:
	@echo "make demo   - set up if needed, then the demo pipeline (Fashion-MNIST subset, Random vs BPC-fKL, ipc 10)"
	@echo "make test   - set up if needed, then the test suite"
	@echo "make lint   - ruff lint and format check (pyproject.toml [tool.ruff])"
	@echo "make bench  - time/memory benchmarks (benchmarks/results/)"
	@echo "make docs   - set up if needed, then the documentation site in site/ (open site/index.html)"
	@echo "make docs-check - make docs, then open built pages in headless Chromium (checks/docs_render.py)"

# The virtualenv sees system site-packages, so a user's own (e.g. CUDA) torch is kept; without any torch,
# torch==2.13.0 is installed first (the CPU build on this machine's disk), before the project.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,docs]'
	@! $(PY) -m pip show torchvision >/dev/null 2>&1 || echo "warning: torchvision is installed in $(VENV); pseudocoresets does not need it"
	touch $(STAMP)

setup: $(STAMP)

data:
	@if [ -e $(FMNIST_DIR)/train-images-idx3-ubyte.gz ] || [ -e $(FMNIST_DIR)/train-images-idx3-ubyte ]; then \
		true; \
	elif [ "$$(id -u)" = "0" ]; then \
		echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist)"; \
		(apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null)) || \
		{ echo "could not install dataset-fashion-mnist; run: apt-get install dataset-fashion-mnist"; exit 1; }; \
	else \
		echo "Fashion-MNIST is missing; run: sudo apt-get install dataset-fashion-mnist"; exit 1; \
	fi

demo: setup data
	$(VENV)/bin/bpc run --preset demo --out $(OUT)

test: setup data
	$(PY) -m pytest tests -n auto --durations=15

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup data
	$(PY) benchmarks/bench_distill.py
	$(PY) benchmarks/bench_hmc.py

# --strict: a broken link, a page missing from the nav or a docstring griffe cannot parse fails the build
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

# headless Chromium for docs-check, from the Debian package when missing and root (as data does for Fashion-MNIST)
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		true; \
	elif [ "$$(id -u)" = "0" ]; then \
		echo "installing chromium (Debian package chromium)"; \
		(apt-get install -y -q chromium >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) || \
		{ echo "could not install chromium; run: apt-get install chromium"; exit 1; }; \
	else \
		echo "chromium is missing; run: sudo apt-get install chromium"; exit 1; \
	fi

docs-check: docs chromium
	$(PY) checks/docs_render.py

clean:
	rm -rf $(VENV) runs site
