# emoreview: `make demo` and `make test` set everything up themselves on a fresh clone.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export GX_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false
PYTEST_ARGS ?=

.PHONY: install test test-unit test-integration lint format demo bench clean

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

# The main job on offline defaults, in ./.emoreview (override with EMOREVIEW_WORKSPACE),
# end to end through TorchServe. KEEP_SERVING=1 leaves the server running afterwards.
EMO := $(BIN)/emoreview --config infra/demo.yaml
FACE := .emoreview/data/faces/test/happy/happy_00000.png
KEEP_SERVING ?= 0
demo: $(STAMP)
	@echo "==> 1/9 generating 700 synthetic reviews (100 per emotion)"
	$(EMO) reviews generate
	@echo "==> 2/9 validating them with Great Expectations (Data Docs in the workspace)"
	$(EMO) reviews validate --data-docs
	@echo "==> 3/9 scoring sentiment, embedding (all-MiniLM-L6-v2), precomputing the 7 emotion answers, publishing a FAISS index version (logged in MLflow)"
	$(EMO) index build
	@echo "==> 4/9 drawing synthetic FER-format faces (48x48 grayscale)"
	$(EMO) faces synthesize --per-class 100 --test-per-class 30
	@echo "==> 5/9 validating the faces, training ResNet-50 briefly on the CPU, registering it in MLflow (promotion gate)"
	$(EMO) train --data .emoreview/data/faces
	@echo "==> 6/9 the registry: versions, lineage, champion"
	$(EMO) registry audit
	@echo "==> 7/9 packaging the champion + index into TorchServe archives and starting TorchServe on 127.0.0.1"
	$(EMO) serve stop >/dev/null
	$(EMO) serve start
	@echo "==> 8/9 sending a face photo to the served emotion_reviews endpoint (token from .emoreview/serving/key_file.json)"
	$(EMO) predict $(FACE) --json || { $(EMO) serve stop; exit 1; }
	@echo "==> 9/9 done"
	@if [ "$(KEEP_SERVING)" = "1" ]; then \
	  echo "TorchServe keeps running: emoreview serve status / emoreview serve stop"; \
	  echo "curl: curl -H \"Authorization: Bearer \$$(python3 -c 'import json;print(json.load(open(\".emoreview/serving/key_file.json\"))[\"inference\"][\"key\"])')\" --data-binary @$(FACE) -H 'Content-Type: application/octet-stream' http://127.0.0.1:8080/predictions/emotion_reviews"; \
	else $(EMO) serve stop; fi

# The benchmark suite (minutes, not in CI): benchmarks/results/<date>.json and .md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	-$(BIN)/emoreview serve stop 2>/dev/null
	rm -rf .emoreview .pytest_cache .ruff_cache
