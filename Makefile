# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Constraint file that pins the torch/torchvision pair; empty it to keep a torch you installed.
TORCH_CONSTRAINTS ?= requirements-lock.txt
PIP_C := $(if $(TORCH_CONSTRAINTS),-c $(TORCH_CONSTRAINTS),)
DEMO_OUT ?= demo_output

.PHONY: setup demo test bench clean-venv lab notebooks docs-notebooks

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(TORCH_CONSTRAINTS),$(BIN)/pip install -q $(PIP_C) torch torchvision,)
	$(BIN)/pip install -q $(PIP_C) -e ".[dev,ray]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/fusionlab demo --out $(DEMO_OUT)

test: setup
	HF_HUB_OFFLINE=1 FUSIONLAB_PRESET=$${FUSIONLAB_PRESET:-ci} $(BIN)/python -m pytest -q tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

bench: setup
	$(BIN)/python benchmarks/metrics_speed.py
	$(BIN)/python benchmarks/model_efficiency.py

lab: setup
	$(BIN)/jupyter lab notebooks/

# Notebooks <-> scripts/notebook_src/*.py: the newer side of each pair wins (edits made in JupyterLab flow back).
notebooks: setup
	$(BIN)/python scripts/build_notebooks.py --sync

# Executed walkthroughs as HTML pages in docs/notebooks/ (DOCS_PRESET=ci for a quick check; NB="00 02" for a subset).
DOCS_PRESET ?= laptop
NB ?=
docs-notebooks: setup
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/render_notebooks.py --preset $(DOCS_PRESET) $(NB)

clean-venv:
	rm -rf $(VENV)
