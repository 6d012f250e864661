#!/usr/bin/env bash
# Validates the CI files maintainers use: the GitHub workflow with @action-validator/cli (npm, its
# packages cached in NPM_CACHE outside the checkout), the Azure Pipelines template against
# .ci/azure-pipelines.schema.json (python3-yaml, python3-jsonschema from Debian). Exit 1 naming the file.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_cache="${NPM_CACHE:-/var/cache/torch-conformance/npm}"
rc=0
# WORKFLOWS and AZURE name other files (the spec that plants a mistake uses them).
for f in ${WORKFLOWS:-.github/workflows/*.yml}; do
  if npx --yes @action-validator/cli@0.6.0 "$f"; then echo "ok: $f (action-validator)"; else echo "INVALID: $f" >&2; rc=1; fi
done
/usr/bin/python3 - "${AZURE:-.ci/azure-pipelines.yml}" .ci/azure-pipelines.schema.json <<'PY' || rc=1
import json, sys
import jsonschema, yaml
doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
schema = json.load(open(sys.argv[2], encoding="utf-8"))
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
for e in errors:
    print(f"INVALID: {sys.argv[1]}: at {'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message[:300]}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"ok: {sys.argv[1]} ({sys.argv[2]})")
PY
exit $rc
