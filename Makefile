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
	DVC_ROOT=$(CURDIR) DVC_STAGE=teacher_fit bash -c "$$($(PY) -c "from dvc.repo import Repo; print(next(s.cmd for s in Repo('.').index.stages if s.addressing == 'teacher_fit'))")"
	$(DVC) commit --force teacher_fit

# The student chain for init seeds 1 and 2 beside the pipeline's seed 0 (after `make repro`; ~15 min a seed on
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

# The real-size student (es_rv_l_mc_s1 @ 504 px, random weights) through quantize -> XNNPACK export: mobile
# size/latency targets. Not part of the embedded `dvc repro` (tens of minutes on 2 CPU cores); writes
# metrics/quantize/real_*.json and metrics/export/real/*.json, picked up by `dvc repro benchmark report`.
# The variant lists are params.yaml's quantize.real_variants / export.real_variants (XNNPACK only: it runs here).
param_list = $(shell $(PY) -c "import yaml; print(' '.join(yaml.safe_load(open('$(PARAMS)'))['$(1)']['real_variants']))")
bench-real: install
	@for v in $(call param_list,quantize); do \
	  $(PY) stages/quantize.py --params $(PARAMS) --model real --variant $$v --real-size \
	    --val-index data/index/concepts_val.json --out exports/quantized/real/$$v \
	    --metrics metrics/quantize/real_$$v.json || exit 1; \
	done
	$(PY) stages/export.py --params $(PARAMS) --backend xnnpack --quantized exports/quantized/real/fp32 \
	  --out exports/pte/real/xnnpack_fp32 --metrics metrics/export/real/xnnpack_fp32.json
	@for v in $(call param_list,export); do \
	  $(PY) stages/export.py --params $(PARAMS) --backend xnnpack --quantized exports/quantized/real/$$v \
	    --reference exports/pte/real/xnnpack_fp32 --out exports/pte/real/xnnpack_$$v \
	    --metrics metrics/export/real/xnnpack_$$v.json || exit 1; \
	done
