# The two commands of the README: `make run` (the main job) and `make test` (every test).
# Both run scripts/setup first, which installs what is missing and skips what is present.
SHELL := /bin/bash
RANKS ?= 2
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1

.PHONY: setup run test lint build bench

setup:
	scripts/setup --python

build: setup
	cargo build --release

# The main job: build (cached) and simulate the seed's reservoir network.
run: build
	mpirun -n $(RANKS) target/release/miv run examples/rc-network/experiment.yaml

# Formatting and lints: rustfmt.toml and the workspace's [workspace.lints]; any warning fails.
lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	cargo clippy --workspace --all-targets --release --no-default-features -- -D warnings

# Lints, then every test, with MPI (multi-rank tests under mpirun) and without (one process, no MPI used), then
# the Python package's tests (python/tests) on one rank and under mpirun -n 2, against the MPI build of the CLI.
test: lint
	cargo test --workspace --release
	cargo test --workspace --release --no-default-features
	cargo build --release
	scripts/setup --python
	.venv-test/bin/python -m pytest -q -p no:cacheprovider python/tests
	mpirun -n 2 .venv-test/bin/python -m pytest -q -p no:cacheprovider python/tests

# Benchmarks beside NEURON 9.0.2 and Arbor 0.12.2 (scripts/setup --bench installs them in .venv-ref).
bench: build
	scripts/setup --bench
	target/release/miv bench network --reference
	target/release/miv bench cell --reference
