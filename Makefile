# casesync — the commands a developer and CI need. `make run` and `make test` are the two
# a newcomer needs; the README starts with them.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= always

.PHONY: run test lint fmt bench

## Run the connector locally: the all-in-one runner on the bundled sandbox.
run:
	$(CARGO) run -p local-runner --bin casesync-local -- run

## Every test: unit, integration, contract and end-to-end.
test:
	$(CARGO) test --workspace --all-features

## Formatting and lints, as CI enforces them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

## Speed and memory goals.
bench:
	$(CARGO) bench --workspace
