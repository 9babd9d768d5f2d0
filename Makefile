# The project's commands: `make dev` (run) and `make test` (check) each install what they need
# first (make dev the Python environment and the Kafka jars only); `make setup` installs all.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv/bin
TOOLS := .tools/bin
export PATH := $(CURDIR)/$(TOOLS):$(CURDIR)/$(VENV):$(PATH)

# CRD schemas for kubeconform: a local copy of the CRDs-catalog where one sits beside the
# checkout, else the online catalog (the default of gpu_analytics_tools.gitops.validate).
SHARED_CRDS := $(abspath $(CURDIR)/../shared/crd-schemas)
ifneq ($(wildcard $(SHARED_CRDS)/README.md),)
export CRD_SCHEMA_LOCATION ?= $(SHARED_CRDS)/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json
endif

PY_SOURCES := services tests loadtest
SHELL_SCRIPTS := $(shell git ls-files '*.sh' 2>/dev/null) .ci/run
DOCKERFILES := $(shell git ls-files '*Dockerfile' 2>/dev/null)

.PHONY: help setup dev test lint validate pytest bench bench-profile reliability protos images cluster-up cluster-down verify sync-status demo-hpa argocd-ui argocd-ui-screenshot dashboards slos verify-observability clean

help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## / {printf "  make %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install every tool and dependency into .venv, .tools and .cache (idempotent)
	@scripts/setup.sh

dev: ## run the pipeline locally (stack, processor, producer, Prometheus); Ctrl-C stops all
	@scripts/setup.sh dev
	@$(VENV)/gpu-analytics dev

test: setup lint validate pytest ## install what is missing, then every test and check (what CI runs)

lint: ## ruff, mypy, import-linter, shellcheck, hadolint, actionlint
	@echo "lint: ruff" && $(VENV)/ruff check $(PY_SOURCES) && $(VENV)/ruff format --check $(PY_SOURCES)
	@echo "lint: mypy" && $(VENV)/mypy $(PY_SOURCES)
	@echo "lint: import-linter (the product does not import the tooling)" && $(VENV)/lint-imports --no-cache
	@echo "lint: shellcheck" && $(VENV)/shellcheck -x $(SHELL_SCRIPTS)
	@if [ -n "$(DOCKERFILES)" ]; then echo "lint: hadolint" && $(VENV)/hadolint $(DOCKERFILES); fi
	@if [ -d .github/workflows ]; then echo "lint: actionlint" && $(TOOLS)/actionlint; fi

validate: ## offline GitOps validation (kustomize, kubeconform, policy checks, checkov)
	@$(VENV)/python -m gpu_analytics_tools.gitops.validate

pytest: ## unit and integration tests on the real local Kafka + MongoDB-wire stack
	@$(VENV)/pytest

reliability: ## the outage scenarios (kill, SIGTERM, broker or database down or frozen, rebalance, dead letters) as a table
	@rm -f .cache/reliability.jsonl && mkdir -p .cache
	@RELIABILITY_REPORT=$(CURDIR)/.cache/reliability.jsonl $(VENV)/pytest -q -p no:cacheprovider \
	  services/tests/processor/test_reliability.py services/tests/processor/test_dead_letters.py \
	  services/tests/processor/test_ingest_outage.py
	@$(VENV)/python -m gpu_analytics_tools.testing.reliability .cache/reliability.jsonl

bench: ## performance benchmarks, printing ratios against a reference (not part of test); BASE=<rev> adds that revision's processor and ingest paths
	@$(VENV)/python -m gpu_analytics_tools.bench.run $(if $(BASE),--base $(BASE))

bench-profile: ## where the consumer, HTTP and OTLP ingest and the producer spend their CPU (py-spy), raw profiles in .cache/bench-profile; BASE=<rev> profiles that revision too
	@$(VENV)/python -m gpu_analytics_tools.bench.profile $(if $(BASE),--base $(BASE))

dashboards: ## regenerate monitoring/dashboards/*.json from the dashboard code
	@$(VENV)/gpu-analytics dashboards build

protos: ## regenerate the PodResources messages (api_pb2.py, .pyi) from their .proto (grpcio-tools)
	@cd services && ../$(VENV)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
	  gpu_analytics/producer/podresources/api.proto

slos: ## regenerate monitoring/slos/processor.yaml from its Sloth spec
	@$(TOOLS)/sloth generate --input monitoring/slos/processor.sloth.yaml --out monitoring/slos/processor.yaml

verify-observability: ## every rule and dashboard query on Prometheus scraping the running pipeline
	@$(VENV)/gpu-analytics verify-observability

cluster-up: ## local k3d cluster (or CLUSTER_CONTEXT) with Argo CD and the tree, until all is green
	@clusters/local/cluster-up.sh

images: ## build the processor and producer images and import them into the local k3d cluster (IMAGES_ARGS=--dry-run prints the commands)
	@clusters/local/images.sh $(IMAGES_ARGS)

cluster-down: ## delete the k3d cluster that cluster-up created
	@clusters/local/cluster-down.sh

verify: ## the pipeline on the current kube context: ready, events flowing, an ingest smoke (VERIFY_ARGS=--dry-run prints the checks)
	@scripts/setup.sh dev
	@$(VENV)/gpu-analytics cluster verify $(VERIFY_ARGS)

demo-hpa: ## the Locust HPA demo on the current kube context: timeline CSV, summary, PNG in .cache/demo-hpa/
	@$(VENV)/gpu-analytics cluster demo-hpa $(DEMO_HPA_ARGS)

sync-status: ## every Application of the current kube context: sync, health, wave, first problem
	@$(VENV)/gpu-analytics cluster status

argocd-ui: ## build the Argo CD web UI into an argocd-server for `cluster-sim up --ui` (Node.js, npm)
	@scripts/argocd-ui/build.sh

argocd-ui-screenshot: ## clusters/local/argocd-applications.png: the UI on the simulation, all green (root, Chromium)
	@scripts/argocd-ui/screenshot.sh

clean: ## remove the stack state and caches (keeps tools)
	rm -rf .cache/stack .pytest_cache .mypy_cache .ruff_cache
