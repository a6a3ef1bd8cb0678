# Driftline: the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# machine-wide caches (Go, uv, Kafka jars, built binaries) linked into .stack/cache first
_ := $(shell bash deploy/local/cache-links.sh)
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR := $(CURDIR)/.stack/cache/uv
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
UV := $(CURDIR)/.stack/cache/tools/bin/uv
STACK := python3 deploy/local/stack.py
PYTEST_ARGS ?=

.PHONY: help setup up down status demo test test-unit lint format bench schemas clean k8s-tools k8s-up k8s-down helm-check \
	containers images ci-images compose-up compose-demo compose-down compose-check chaos soak console

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## install system packages, the Python workspace, Kafka jars and InfluxDB (cached)
	@bash deploy/local/bootstrap.sh
	@$(STACK) install

up: setup ## start Kafka, PostgreSQL, Redis, InfluxDB and Prometheus on loopback (idempotent)
	@$(STACK) up

down: ## stop the services and the stack; leaves no process behind
	@$(STACK) all-down
	@$(STACK) check-down

status: ## what runs, on which port, with how much memory
	@$(STACK) status

demo: up console ## run the main job: the stack and every service, shown healthy
	@$(PY) deploy/local/demo.py

test: up k8s-tools images ci-images console ## install everything, start the stack, run unit, integration and e2e tests
	@bash deploy/local/console.sh test
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup ## unit tests only (no servers)
	@$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check) and mypy (strict)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy libs/driftline-contracts/src libs/driftline-core/src libs/driftline-stats/src libs/driftline-sdk/src services/*/src
	@bash deploy/local/console.sh lint

format: setup ## apply ruff's formatting and safe fixes
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

console: setup ## the web console: npm ci (cached), npm run build into console/dist when a source changed
	@bash deploy/local/console.sh build

bench: up ## benchmarks; figures in .bench/results.json
	@$(PY) tests/benchmarks/run.py

chaos: up ## the fault suite alone, 30 s outages (DRIFTLINE_TEST_STACK=external: a staging stack)
	@DRIFTLINE_FAULT_OUTAGE_S=$${DRIFTLINE_FAULT_OUTAGE_S:-30} $(PY) -m pytest tests/faults -m faults $(PYTEST_ARGS)

soak: up ## 30 min at the fault suite's load: RSS, lag and open fds per process, slopes (DRIFTLINE_SOAK_S)
	@$(PY) tests/faults/soak.py

schemas: setup ## regenerate docs/schemas from the event models and docs/openapi from the services' apps
	@$(PY) -m driftline_core.events.schemas docs/schemas
	@$(PY) -m driftline_compliance_report.model docs/schemas
	@$(PY) -m driftline_core.openapi docs/openapi

clean: down ## remove server data and logs (keeps the download/build cache)
	@rm -rf .stack/data .stack/logs .stack/run

k8s-tools: ## etcd, kube-apiserver, scheduler, controller-manager, KWOK, helm, kubectl (cached)
	@bash deploy/k8s/tools.sh >/dev/null
	@bash deploy/k8s/crds.sh >/dev/null

k8s-up: k8s-tools ## a private Kubernetes API server with KWOK nodes on loopback (.stack/k8s)
	@bash deploy/k8s/cluster.sh start

k8s-down: ## stop the private Kubernetes API server
	@bash deploy/k8s/cluster.sh stop

helm-check: up k8s-tools ## the Helm chart's tests: render, schema, API server, install/upgrade, hook job, backup
	@$(PY) -m pytest tests/deploy/test_helm*.py $(PYTEST_ARGS)

# ---- containers: images, docker compose (deploy/images, deploy/compose, docs/deploy.md) ----
COMPOSE_LOCAL := . deploy/images/env.sh && docker-compose -f docker-compose.yml -f deploy/compose/ci.override.yml

containers: ## podman, buildah, Docker Compose v5 (apt-get, go; cached in .stack/cache)
	@bash deploy/images/tools.sh

images: containers ## build the five service images and the tools image with podman
	@bash deploy/images/build.sh

ci-images: containers setup ## local stand-ins of compose's third-party images (no registry here)
	@bash deploy/compose/ci/build.sh

compose-up: images ci-images ## docker-compose.yml with the CI override on podman, healthy (--wait)
	@bash deploy/images/podman-api.sh start
	@bash deploy/compose/make-secrets.sh >/dev/null
	@$(COMPOSE_LOCAL) up -d --wait --wait-timeout 300

compose-demo: compose-up ## stream the demo model through the compose system
	@$(COMPOSE_LOCAL) --profile demo run --rm -T demo

compose-down: ## stop the compose system, remove its volumes, stop podman's API
	@if [ -S .stack/run/podman/podman.sock ]; then $(COMPOSE_LOCAL) --profile demo down -v --remove-orphans --timeout 10; fi
	@bash deploy/images/podman-api.sh stop

compose-check: images ci-images ## the image and compose tests (tests/deploy)
	@$(PY) -m pytest tests/deploy/test_images.py tests/deploy/test_compose.py tests/deploy/test_testcontainers.py $(PYTEST_ARGS)
