# `make test` and `make demo` set everything up by themselves on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0

.PHONY: install test test-long demo demo-core bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned, so that no dependency pulls an unpinned (multi-GB CUDA) build
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest tests -m "not long"

# the long end-to-end checks (GTP with its own critic, GMPG Eq. 8, Diffusion-QL and QGPO on Pendulum; the baselines' Pendulum
# runs; GMPO, GMPG, GTP, IDQL, SRPO and Diffusion-QL with bf16 backbones; tens of minutes on 2 cores)
test-long: $(STAMP)
	GTP_PENDULUM_TEST=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest tests -m long -s

# the beta-ablation sweep (smoke preset, embedded Ray on 127.0.0.1) and its Table 12
demo: $(STAMP)
	MINARI_DATASETS_PATH=$(CURDIR)/out/minari OMP_NUM_THREADS=1 $(BIN)/python sweeps/beta_ablation.py --preset smoke --storage out/demo --fresh
	$(BIN)/python analysis/make_tables.py --results out/demo --out out/demo/tables

# the generative core alone: a conditional flow on the Swiss roll, every solver, a PNG
demo-core: $(STAMP)
	$(BIN)/python -m genrl_core.demo --out out/demo

# one table of ceilings and hot paths (one torch thread), also written as JSON to compare across commits;
# BENCH_FLAGS=--quick for a short run, --ray adds a smoke trial under Ray against no Ray, --packing packed seeds
bench: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/speed_bench.py $(BENCH_FLAGS) --json out/speed_bench.json

clean:
	rm -rf $(VENV) out runs results
