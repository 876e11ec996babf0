# One entry point for every job. Each target sets up what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first and pinned: on machines that keep a CPU wheel of this
# version on disk pip takes it instead of a multi-GB CUDA build; elsewhere pip
# fetches the normal torch of that version. Override with `make TORCH_SPEC=...`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: install system-deps demo test test-timing bench lint docs-screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: $(STAMP)
	$(BIN)/deepcube demo --out $(OUT)/demo

# Two test processes: the tests wait on Qt, subprocesses and files about half the time, so
# two halve the suite's time on a 2-core machine; each holds up to 3.5 GB, so no more.
TEST_WORKERS ?= 2

test: $(STAMP) system-deps
	bash scripts/with-display.sh $(BIN)/python -m pytest -m "not timing" -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Latency checks (the viewer's event loop during training): meaningful only on an idle machine.
test-timing: $(STAMP) system-deps
	bash scripts/with-display.sh $(BIN)/python -m pytest -m timing $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Segment 2 GiB and 8 GiB cubes written to disk (where it has room): time and peak RSS.
.PHONY: bench-big
bench-big: $(STAMP)
	$(BIN)/python benchmarks/bigcube.py --gigabytes 2 8 --dir $(OUT)/bigcube $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m mypy src

docs-screenshots: $(STAMP) system-deps
	bash scripts/with-display.sh $(BIN)/python docs/make_screenshots.py

clean:
	rm -rf $(VENV) $(OUT) build dist src/*.egg-info
