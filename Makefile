# modelfleet — every build, check and test goes through here (CI runs `make test` via .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv tools vllm-venv vllm-table generate check-generated crd-compat lint unit e2e test demo demo-down cluster-up cluster-down bench clean docs-png

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv with the package and its dev tools

# vLLM releases modelfleet renders for (read from the engine package, the one place they are listed).
VLLM_VERSIONS := $(shell sed -n 's/^SUPPORTED_VERSIONS[^=]*= *(\(.*\))/\1/p' operator/modelfleet/engines/vllm/versions.py | tr -d '",')
VLLM_DATA := operator/modelfleet/engines/vllm/data

vllm-venv: ## build the cached virtualenvs with each supported vllm (~8 GB each; minutes cold, instant warm)
	@for v in $(VLLM_VERSIONS); do scripts/vllm_venv.sh $$v >/dev/null; done

vllm-table: ## regenerate the flag/metric table of one vLLM release: make vllm-table VERSION=x.y.z
	@test -n "$(VERSION)" || { echo "usage: make vllm-table VERSION=x.y.z" >&2; exit 2; }
	@dir=$$(scripts/vllm_venv.sh $(VERSION)) && $$dir/bin/python scripts/vllm_table.py --write $(VLLM_DATA) && \
	  { test -f scripts/vllm_constraints/$(VERSION).txt || \
	    $$dir/bin/python -m pip freeze --disable-pip-version-check > scripts/vllm_constraints/$(VERSION).txt; }

tools: ## build and cache Kubernetes, etcd, KWOK, Helm, Argo CD and KEDA (first run ~30 min + KEDA ~17 CPU-min), install Prometheus and Redis
	e2e/cluster build

generate: venv ## regenerate crds/, the chart's CRD, manifests/, the dashboard and alert rules from their sources
	$(BIN)/modelfleet crd > crds/llmdeployments.modelfleet.io.yaml
	$(BIN)/python scripts/generate.py

check-generated: venv ## generated files (crds/, chart CRD, manifests/) match their sources
	$(BIN)/python scripts/generate.py --check

CRD_BASE ?= origin/main
crd-compat: venv ## CRD changes that would break stored objects, compared with $(CRD_BASE)
	$(BIN)/python scripts/crd_compat.py --git $(CRD_BASE)

lint: venv ## ruff and mypy
	$(BIN)/ruff check operator tests e2e bench scripts
	$(BIN)/mypy

unit: venv ## the fast unit tests (no cluster)
	$(BIN)/pytest tests $(PYTEST_ARGS)

e2e: venv tools ## integration and end-to-end tests on the local cluster
	$(BIN)/pytest e2e $(PYTEST_ARGS)

test: venv tools vllm-venv lint ## every test: lint, unit, integration and e2e on the local cluster
	$(BIN)/pytest tests e2e $(PYTEST_ARGS)

demo: venv tools ## local cluster + CRD + operator + an example LLMDeployment reaching Ready
	e2e/demo up

demo-down: ## stop the demo's operator and the local cluster
	e2e/demo down

cluster-up: tools ## start the local cluster (prints KUBECONFIG=...)
	e2e/cluster up --with-prometheus

cluster-down: ## stop the local cluster and remove its state
	e2e/cluster down

bench: venv tools ## benchmarks (printed numbers, not tests): autoscaler policy vs KEDA/HPA, fleet reconcile
	$(BIN)/python -m bench.autoscaler
	$(BIN)/python -m bench.fleet --count 200

docs-png: venv tools ## redraw docs/monitoring-dashboard.png from e2e data (matplotlib; there is no Grafana here)
	MODELFLEET_DOCS_PNG=1 $(BIN)/pytest e2e/test_monitoring.py -k every_query $(PYTEST_ARGS)

clean: ## remove the venv and caches in the work tree (not the binary cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist operator/*.egg-info
