# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo lint test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat  # a .pth entry: faster start-up than an import hook
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# The main job on the embedded default: RDKit's bundled NCI molecules, grep and a scaling table.
demo: install
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; set -e; \
	echo '$$ workbench datasets fetch nci-5k --dataset DIR --shard-size 32kB'; \
	$(BIN)/workbench datasets fetch nci-5k --dataset $$tmp/nci --shard-size 32kB; \
	echo '$$ workbench info --dataset DIR'; \
	$(BIN)/workbench info --dataset $$tmp/nci; \
	echo "\$$ workbench grep -F 'C(=O)N' --dataset DIR --stats > hits.tsv; head hits.tsv"; \
	$(BIN)/workbench grep -F 'C(=O)N' --dataset $$tmp/nci --stats > $$tmp/hits.tsv; head -n 10 $$tmp/hits.tsv; \
	echo "\$$ workbench substructure -c 'c1ccccc1[N+](=O)[O-]' --dataset DIR   # RDKit, exact"; \
	$(BIN)/workbench substructure -c 'c1ccccc1[N+](=O)[O-]' --dataset $$tmp/nci || true; \
	echo "\$$ workbench bench scaling --dataset DIR --query 'C(=O)N' -F --workers 1,2 --repeat 3"; \
	$(BIN)/workbench bench scaling --dataset $$tmp/nci --query 'C(=O)N' -F --workers 1,2 --repeat 3

# Static checks first (seconds): layers import only downward, lint, types of the public API.
lint: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python -m pytest benchmarks -q --benchmark-only

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
