#!/usr/bin/env bash
# `make deploy`: build and push one image per function, then `terraform apply`.
#
#   scripts/deploy.sh                 # terraform/terraform.tfvars, docker, git commit tag
#   TF_VAR_FILE=prod.tfvars BUILDER=cloudbuild AUTO_APPROVE=1 scripts/deploy.sh
#
# Environment:
#   TF_VAR_FILE   variables file (default terraform/terraform.tfvars; see terraform/example.tfvars)
#   IMAGE_TAG     image tag (default: the git commit, with -dirty-<time> for uncommitted changes)
#   BUILDER       docker (local docker + push) or cloudbuild (gcloud builds submit)
#   AUTO_APPROVE  1: apply without asking
#
# Order matters: Cloud Run refuses a service whose image does not exist, and the images are
# pushed to a repository Terraform creates. So: (1) apply only the APIs and the repository,
# (2) build and push every image, (3) apply everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$ROOT/terraform"
VAR_FILE="${TF_VAR_FILE:-$TF_DIR/terraform.tfvars}"
BUILDER="${BUILDER:-docker}"
cd "$ROOT"

die() { echo "deploy: $*" >&2; exit 1; }
tf() { terraform -chdir="$TF_DIR" "$@"; }

command -v terraform >/dev/null || die "terraform is required (https://developer.hashicorp.com/terraform/install)"
[ -f "$VAR_FILE" ] || die "no variables file $VAR_FILE: copy terraform/example.tfvars to terraform/terraform.tfvars and fill it in"
VAR_FILE="$(cd "$(dirname "$VAR_FILE")" && pwd)/$(basename "$VAR_FILE")"

if [ -z "${IMAGE_TAG:-}" ]; then
  IMAGE_TAG="$(git rev-parse --short=12 HEAD)"
  # A tag names one build: uncommitted changes must not reuse the commit's tag.
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    IMAGE_TAG="$IMAGE_TAG-dirty-$(date -u +%Y%m%d%H%M%S)"
  fi
fi

# The deployable functions: every crate under functions/ except the local runner (the same
# rule tests/integration/terraform.rs applies).
functions=()
for dir in functions/*/; do
  name="$(basename "$dir")"
  [ "$name" = "local-runner" ] || functions+=("$name")
done
[ "${#functions[@]}" -gt 0 ] || die "no function crates under functions/"

vars=(-var-file="$VAR_FILE" -var "image_tag=$IMAGE_TAG")
approve=()
[ "${AUTO_APPROVE:-}" = "1" ] && approve=(-auto-approve)

echo "deploy: ${#functions[@]} functions, tag $IMAGE_TAG, builder $BUILDER"
tf init -input=false

eval_tf() { tf console "${vars[@]}" <<<"$1" | tr -d '"'; }

# The CRM adapter (crm_kind) and its secret, from terraform/crm_{kind}.tf: the functions
# cannot start without a version of it, so it is created with the repository.
crm_kind="$(eval_tf var.crm_kind)"
crm_secret_resource="$(eval_tf local.crm_secret.resource)"
crm_secret_id="$(eval_tf local.crm_secret.id)"
crm_token_given="$(eval_tf local.crm_secret.token_given)"
[ -n "$crm_kind" ] && [ -n "$crm_secret_resource" ] || die "could not read crm_kind and its secret from Terraform"
echo "deploy: CRM $crm_kind, its token in Secret Manager secret $crm_secret_id"

# (1) What the images and the functions need first.
tf apply -input=false "${vars[@]}" "${approve[@]}" \
  -target=google_project_service.apis \
  -target=google_artifact_registry_repository.images \
  -target="$crm_secret_resource"

prefix="$(eval_tf local.image_prefix)"
project="$(eval_tf var.project_id)"
[ -n "$prefix" ] && [ -n "$project" ] || die "could not read the image prefix and project from Terraform"

# A revision whose secret has no version fails to start; say so now, with the fix.
if [ "$crm_token_given" != "true" ] && command -v gcloud >/dev/null; then
  if [ -z "$(gcloud secrets versions list "$crm_secret_id" --project "$project" --filter=state=ENABLED --limit=1 --format='value(name)' 2>/dev/null)" ]; then
    die "secret $crm_secret_id has no version yet: printf %s \"\$TOKEN\" | gcloud secrets versions add $crm_secret_id --project $project --data-file=-"
  fi
fi

# (2) Build and push.
case "$BUILDER" in
  docker)
    command -v docker >/dev/null || die "docker is required (or BUILDER=cloudbuild)"
    command -v gcloud >/dev/null && gcloud auth configure-docker "${prefix%%/*}" --quiet
    for f in "${functions[@]}"; do
      echo "deploy: building $prefix/$f:$IMAGE_TAG"
      DOCKER_BUILDKIT=1 docker build --build-arg "FUNCTION=$f" -t "$prefix/$f:$IMAGE_TAG" .
      docker push "$prefix/$f:$IMAGE_TAG"
    done
    ;;
  cloudbuild)
    command -v gcloud >/dev/null || die "gcloud is required for BUILDER=cloudbuild"
    config="$(mktemp)"
    trap 'rm -f "$config"' EXIT
    {
      echo "steps:"
      for f in "${functions[@]}"; do
        echo "  - name: gcr.io/cloud-builders/docker"
        echo "    env: [DOCKER_BUILDKIT=1]"
        echo "    args: [build, --build-arg, FUNCTION=$f, -t, '$prefix/$f:$IMAGE_TAG', .]"
      done
      echo "images:"
      for f in "${functions[@]}"; do echo "  - '$prefix/$f:$IMAGE_TAG'"; done
      echo "timeout: 7200s"
      echo "options: {machineType: E2_HIGHCPU_8}"
    } >"$config"
    gcloud builds submit --project "$project" --config "$config" .
    ;;
  *) die "BUILDER must be docker or cloudbuild, not $BUILDER" ;;
esac

# (3) Everything else, on the images just pushed.
tf apply -input=false "${vars[@]}" "${approve[@]}"
echo "deploy: done; services: $(tf output -json service_urls)"
