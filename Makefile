# emoreview: `make demo` and `make test` set everything up themselves on a fresh clone.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export GX_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false
PYTEST_ARGS ?=

.PHONY: install test test-unit test-integration lint format demo clean

# (Re)install when the project's requirements change. constraints.txt holds the versions
# this project was tested with, so every machine resolves the same set.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

# Unit and integration tests (real servers, small data). pytest's exit code 5 means
# "no tests collected": that is a failure of the suite, reported as such.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The main job on offline defaults, in ./.emoreview (override with EMOREVIEW_WORKSPACE).
EMO := $(BIN)/emoreview --config infra/demo.yaml
demo: $(STAMP)
	@echo "==> 1/7 generating 700 synthetic reviews (100 per emotion)"
	$(EMO) reviews generate
	@echo "==> 2/7 validating them with Great Expectations (Data Docs in the workspace)"
	$(EMO) reviews validate --data-docs
	@echo "==> 3/7 scoring sentiment, embedding with all-MiniLM-L6-v2, precomputing the 7 answers, publishing a FAISS index version"
	$(EMO) index build
	@echo "==> 4/7 why are customers angry?"
	$(EMO) search --emotion angry "why are customers angry"
	@echo "==> 5/7 drawing synthetic FER-format faces (48x48 grayscale)"
	$(EMO) faces synthesize --per-class 100 --test-per-class 30
	@echo "==> 6/7 validating the faces, training ResNet-50 briefly on the CPU, registering it in MLflow (promotion gate)"
	$(EMO) train --data .emoreview/data/faces
	$(EMO) registry audit
	@echo "==> 7/7 a face photo -> emotion -> why customers felt it (summary + reviews + sentiment)"
	$(EMO) analyze .emoreview/data/faces/test/happy/happy_00000.png

clean:
	rm -rf .emoreview .pytest_cache .ruff_cache
