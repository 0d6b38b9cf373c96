# Shortcuts for the compose stack (docker/compose.yaml) and the test scripts.
# `make help` lists the targets.

COMPOSE ?= docker compose -f docker/compose.yaml

.DEFAULT_GOAL := help
.PHONY: help up down start_admin stop_admin logs_admin start_scraper stop_scraper logs_scraper \
	start_grafana stop_grafana logs_grafana test crawl

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z_]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Compose reads docker/.env for the passwords; the stack does not start without them.
docker/.env:
	@echo "docker/.env is missing: copy docker/.env.example to docker/.env and set the passwords" >&2
	@exit 1

up: docker/.env ## Build the image and start the whole stack
	$(COMPOSE) up -d --build

down: ## Stop and remove the stack's containers (volumes are kept)
	$(COMPOSE) down

start_admin: docker/.env ## Start the admin with PostgreSQL, Kafka and the migrations
	$(COMPOSE) up -d --build admin

stop_admin: ## Stop the admin
	$(COMPOSE) stop admin

logs_admin: ## Follow the admin's logs
	$(COMPOSE) logs -f admin

start_scraper: docker/.env ## Start the scrapers (SCRAPER_REPLICAS of them) with Kafka
	$(COMPOSE) up -d --build scraper

stop_scraper: ## Stop the scrapers
	$(COMPOSE) stop scraper

logs_scraper: ## Follow the scrapers' logs
	$(COMPOSE) logs -f scraper

start_grafana: docker/.env ## Start Grafana with Prometheus, Loki and Alloy
	$(COMPOSE) up -d grafana prometheus loki alloy

stop_grafana: ## Stop Grafana
	$(COMPOSE) stop grafana

logs_grafana: ## Follow Grafana's logs
	$(COMPOSE) logs -f grafana

test: ## Run the test suite (scripts/test.sh)
	scripts/test.sh

crawl: ## Crawl URL on a local cluster: make crawl URL=http://127.0.0.1:8080/
	@test -n "$(URL)" || { echo "URL is missing: make crawl URL=http://127.0.0.1:8080/" >&2; exit 1; }
	scripts/local-cluster.sh crawl "$(URL)"
