# `make run` and `make test` work on a fresh clone: both create .venv and install the
# project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/publisher subscribers import content/subscribers.csv
	$(BIN)/publisher run --once

lint: $(STAMP)
	$(BIN)/ruff check publisher tests bench
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/pytest

screenshots: $(STAMP)
	$(BIN)/python bench/screenshots.py --out screenshots
	$(BIN)/python bench/console_screenshots.py --out screenshots

clean:
	rm -rf $(VENV) publisher.db publisher.db-* outbox journal archive screenshots feeds/*.xml feeds/*.json feeds/*.opml feeds/index.html feeds/tags feeds/authors feeds/archive preview-*.html preview-*.txt
