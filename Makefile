# shiftlab: two commands do everything (see README.md): `make demo` and `make test`.
# Every step is idempotent: a second run does nothing that is already done.

SHIFTLAB := target/debug/shiftlab
FMNIST   := /usr/share/datasets/fashion-mnist
DATASET  := data/fashion-mnist.parquet
PIPELINE := pipelines/quickstart.toml
RUN      := runs/quickstart
export CARGO_TERM_COLOR ?= never

.PHONY: demo test setup setup-test build lint test-rust test-lean test-parity clean-data

## Set-up: libtorch (PyPI torch wheel), Fashion-MNIST (Debian), frost photos (PyPI wheel).
setup:
	@bash scripts/setup-libtorch.sh
	@bash scripts/setup-assets.sh

## Set-up for tests: the above plus the Python reference venv (.venv) and the packages of the
## local Slurm cluster the scale-out test starts and stops itself (scripts/slurm-cluster.sh), and
## Debian's chromium for the report's browser test.
setup-test: setup
	@bash scripts/setup-python.sh
	@bash scripts/setup-torch-python.sh
	@bash scripts/slurm-cluster.sh install
	@bash scripts/setup-browser.sh

## Both programs: `shiftlab` (no libtorch) and `shiftlab-torch` beside it (run, train, ...).
build: setup
	cargo build --bins

## The main job on the embedded default data.
demo: build
	@mkdir -p data
	$(SHIFTLAB) info
	@if [ -f $(DATASET) ]; then echo "$(DATASET) exists (remove it to ingest again)"; \
	else $(SHIFTLAB) ingest --format fashion-mnist --input $(FMNIST) --output $(DATASET); fi
	$(SHIFTLAB) inspect $(DATASET)
	$(SHIFTLAB) validate $(PIPELINE)
	$(SHIFTLAB) run $(PIPELINE)
	$(SHIFTLAB) query --run $(RUN) "SELECT model, probe, preset, clean_error, mean_error, mean_error_15, mean_error_19, mce, relative_mce, mean_cosine_to_clean FROM robustness ORDER BY model, probe"
	$(SHIFTLAB) report $(RUN) --out $(RUN)/report
	@echo "report: $(RUN)/report/report.html (and report.md)"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test-rust: setup-test
	cargo test --workspace --all-targets

## The `shiftlab` program built without libtorch passes the tests of the commands it keeps.
test-lean: setup-test
	cargo test -p shiftlab --no-default-features --test ingest --test shift_dataset --test cli_info --test lean

test-parity: setup-test
	@if [ -x scripts/test-corruption-parity.sh ]; then bash scripts/test-corruption-parity.sh; fi

## The whole test suite (what CI runs).
test: setup-test lint test-rust test-lean test-parity
