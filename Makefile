# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv if needed and install everything into it.
#
# torch/torchvision are pinned here, not in pyproject.toml (which states ranges), so a machine
# that brings its own matching torch keeps it:  make test VENV_FLAGS=--system-site-packages
# TORCH_PINS=  (an empty TORCH_PINS installs no torch).

PYTHON      ?= python3
VENV        ?= .venv
VENV_FLAGS  ?=
TORCH_PINS  ?= torch==2.15.0 torchvision==0.29.2
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.plugrcnn-installed
PLUGINS     := plugins/class plugins/box plugins/mask plugins/keypoint plugins/maskiou
TEST_PLUGINS := tests/plugins/area_head
PYTEST_ARGS ?=

.PHONY: install test demo clean gpu-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

$(STAMP): $(BIN)/python pyproject.toml $(foreach p,$(PLUGINS) $(TEST_PLUGINS),$(p)/pyproject.toml)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23"
	@# pinned versions that are not in the local wheel folder (its CPU torch breaks torchvision)
	@if [ -n "$(TORCH_PINS)" ]; then $(BIN)/python -m pip install --quiet $(TORCH_PINS); fi
	$(BIN)/python -m pip install --quiet -e '.[deploy,test]' $(foreach p,$(PLUGINS) $(TEST_PLUGINS),-e $(p))
	$(BIN)/python -c "import torch, torchvision, torchvision.ops; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/plugrcnn demo --output-dir output/demo

# on a GPU machine: tests, export, bench and video on every backend, one JSON (tools/gpu_check.sh);
# without a GPU it prints the steps and exits 0.  GPU_CHECK_ARGS=--dry-run|--wheels DIR|--budget S
gpu-check:
	bash tools/gpu_check.sh --python $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) $(GPU_CHECK_ARGS)

clean:
	rm -rf output .pytest_cache
