# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
# Each installs what it needs (one install level per stamp file in the venv):
#   make demo  -> the core library            pip install -e .
#   make lab   -> + the notebooks extra       pip install -e ".[notebooks]"
#   make test  -> + dev and ray extras        pip install -e ".[dev,ray]"   (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Constraint file that pins the torch/torchvision pair; empty it to keep a torch you installed.
TORCH_CONSTRAINTS ?= requirements-lock.txt
PIP_C := $(if $(TORCH_CONSTRAINTS),-c $(TORCH_CONSTRAINTS),)
DEMO_OUT ?= demo_output
# `make floors`: the declared minimum versions (requirements-floors.txt) on the oldest Python
FLOORS_PYTHON ?= python3.10
FLOORS_VENV ?= .venv-floors

.PHONY: setup demo test bench clean-venv lab floors notebooks docs-notebooks

setup: $(VENV)/.installed

$(VENV)/.created:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(TORCH_CONSTRAINTS),$(BIN)/pip install -q $(PIP_C) torch,)
	touch $@

$(VENV)/.installed-core: pyproject.toml setup.py requirements-lock.txt | $(VENV)/.created
	$(BIN)/pip install -q $(PIP_C) -e .
	touch $@

$(VENV)/.installed-notebooks: pyproject.toml setup.py requirements-lock.txt | $(VENV)/.created
	$(BIN)/pip install -q $(PIP_C) -e ".[notebooks]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# the full test environment (the stamp keeps its historical name)
$(VENV)/.installed: pyproject.toml setup.py requirements-lock.txt | $(VENV)/.created
	$(BIN)/pip install -q $(PIP_C) -e ".[dev,ray]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

demo: $(VENV)/.installed-core
	HF_HUB_OFFLINE=1 $(BIN)/fusionlab demo --out $(DEMO_OUT)

# includes tests/test_wheel.py: build the wheel, run demo + a ci grid from a clean venv
test: $(VENV)/.installed
	HF_HUB_OFFLINE=1 FUSIONLAB_PRESET=$${FUSIONLAB_PRESET:-ci} $(BIN)/python -m pytest -q tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/metrics_speed.py
	$(BIN)/python benchmarks/model_efficiency.py

lab: $(VENV)/.installed-notebooks
	$(BIN)/jupyter lab notebooks/

# Not part of CI (downloads ~4 GB): the suite and the notebooks against every declared minimum
# version (docs/install.md, "Version floors"). Phase 1: the three Qwen2-VL tests need the mllm
# extra's transformers (4.56), not core's (4.40); phase 2 raises transformers and runs them.
# Python 3.10 not on PATH: make floors FLOORS_PYTHON="$(pyenv root)/versions/3.10.13/bin/python3.10"
FLOORS_MLLM_TESTS := "tests/text/test_text_contract.py::test_captioner_contract[mllm]" \
    "tests/text/test_text_contract.py::test_text_prior_source_contract[mllm]" \
    tests/text/test_text_models.py::test_mllm_captioner_with_tiny_qwen2vl_resume_and_cli
floors:
	test -x $(FLOORS_VENV)/bin/python || $(FLOORS_PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/pip install -q --upgrade pip
	$(FLOORS_VENV)/bin/pip install -q --only-binary :all: -r requirements-floors.txt "tomli>=2" "setuptools>=77"
	$(FLOORS_VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	$(FLOORS_VENV)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	HF_HUB_OFFLINE=1 FUSIONLAB_PRESET=ci $(FLOORS_VENV)/bin/python -m pytest -q tests notebooks --nbval-lax \
	    --nbval-current-env -p no:cacheprovider -m "not wheel" $(addprefix --deselect ,$(FLOORS_MLLM_TESTS))
	$(FLOORS_VENV)/bin/pip install -q --only-binary :all: "transformers==4.56.0"
	HF_HUB_OFFLINE=1 FUSIONLAB_PRESET=ci $(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOORS_MLLM_TESTS)

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
