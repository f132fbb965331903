# Two commands set up a fresh machine: `make repro` (whole pipeline, embedded profile) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
DVC := $(VENV)/bin/dvc
PARAMS ?= params.yaml
# dvc runs each stage's `python ...` through the shell: make that the venv's python.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install repro test test-extended lint clean-venv bench-real teacher-fit seeds

install: $(VENV)/.installed

# torch/torchvision are pinned (pyproject) and resolved by pip from the local wheel store on these machines.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

# Make sure this directory is a git repo with DVC initialised, rebuild whatever changed, then copy the report's
# results block (reports/results.md) into README.md: the report stage itself writes reports/ only.
repro: install
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || (git init -q && git add -A && git -c user.name=sam3-edge -c user.email=sam3-edge@localhost commit -qm "initial import")
	@test -d .dvc || $(DVC) init -q
	@start=$$(date +%s); $(DVC) repro && echo "make repro: dvc repro took $$(( $$(date +%s) - start )) s (per stage: metrics/pipeline.json)"
	$(VENV)/bin/sam3-edge readme --results reports/results.md --readme README.md

# Refit the shipped bootstrap teacher: stage `teacher_fit` is frozen so that `dvc repro` never refits it, so this
# runs its dvc.yaml command as DVC would (after the data stage), then records it in dvc.lock (`dvc commit`; `dvc
# unfreeze` would rewrite the hand-written dvc.yaml). About 52 min on 2 CPU cores at teacher.train.steps 8000; a
# killed fit resumes. Commit teachers/bootstrap, metrics/teacher_fit.json and dvc.lock; the next `dvc repro`
# installs the new teacher and re-runs everything downstream of it.
teacher-fit: install
	$(DVC) repro data
	$(PY) scripts/run_frozen.py teacher_fit

# The student chain for init seeds 1 and 2 beside the pipeline's seed 0 (after `make repro`; ~40 min a seed on
# 2 cores): metrics/student_seeds.json with each seed's student/teacher ratios, their mean and spread; then the
# report stage re-renders (it depends on every metrics file).
seeds: install
	$(PY) scripts/student_seeds.py --seeds 1 2
	$(DVC) repro report

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Tests left out of `make test` (marker `extended`): training runs that record a known gap, minutes each.
test-extended: install
	$(PY) -m pytest -m extended $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src stages tests && $(VENV)/bin/ruff format --check src stages tests

clean-venv:
	rm -rf $(VENV)

# The real-size student (quantize.real_size_variant @ its resolution, random weights) through quantize -> XNNPACK
# export, for the mobile size / latency / memory figures: the frozen stages of real/dvc.yaml, real_quantize@<v>,
# real_export_fp32 and real_export@<v> (variants: quantize.real_variants, export.real_variants), the Core ML
# lowering of Core ML's recipes (real_export_coreml: export.backend_variants.coreml), then their
# benchmark (real_benchmark, beside SAM 3's real-architecture latency of real_teacher_latency). `dvc repro` never
# runs them (half an hour on 2 CPU cores); this runs them, records them in real/dvc.lock, copies their figures to
# metrics/benchmark_real.json (what the default benchmark stage reads), then brings the benchmark,
# gates and report up to date (`dvc repro`) and the README's results block.
bench-real: install
	$(PY) scripts/run_frozen.py real_quantize real_export_fp32 real_export real_export_coreml real_benchmark
	cp metrics/real/benchmark.json metrics/benchmark_real.json
	$(DVC) repro
	$(VENV)/bin/sam3-edge readme --results reports/results.md --readme README.md
