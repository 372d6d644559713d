#!/usr/bin/env bash
# Writes terraform/provider-schema.json: the resource, attribute and block NAMES of the
# google provider 6.50.0 for exactly the resource and data source types terraform/*.tf use.
#
# No Terraform provider can be downloaded where casesync's tests run, but the npm registry
# can be reached, and @cdktf/provider-google 16.12.1 is generated from provider 6.50.0: its
# JavaScript lists every attribute and nested block. tests/integration/terraform.rs checks
# the configuration's names against the small JSON this writes (commit it).
#
# Rerun after adding a resource type to terraform/, or when moving the provider pin
# (then also change PACKAGE to the cdktf release generated from that provider).
set -euo pipefail

PACKAGE="@cdktf/provider-google@16.12.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/terraform/provider-schema.json"

for tool in node npm tar; do
  command -v "$tool" >/dev/null || { echo "extract-provider-schema: $tool is required" >&2; exit 1; }
done

# The types in use, read from the .tf files themselves, so the JSON never lists less (or
# more) than the configuration needs.
args=()
while read -r kind type; do
  case "$kind" in
    resource) args+=(--resource "$type") ;;
    data) args+=(--data "$type") ;;
  esac
done < <(sed -nE 's/^(resource|data)[[:space:]]+"([a-z0-9_]+)".*/\1 \2/p' "$ROOT"/terraform/*.tf | sort -u)
if [ "${#args[@]}" -eq 0 ]; then
  echo "extract-provider-schema: no resource or data blocks in $ROOT/terraform" >&2
  exit 1
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The package is ~32 MB packed and ~300 MB unpacked: it lives in a temp dir only.
(cd "$TMP" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$TMP"/*.tgz -C "$TMP"

node "$ROOT/scripts/extract_provider_schema.js" "$TMP/package/lib" "${args[@]}" >"$TMP/schema.json"
mv "$TMP/schema.json" "$OUT"
echo "wrote $OUT: $(( ${#args[@]} / 2 )) types from $PACKAGE ($(wc -c <"$OUT") bytes)"
