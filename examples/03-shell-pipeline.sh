#!/usr/bin/env bash
# Recipe 3 — a shell pipeline tracks its runs (seed 002).
#
# The seed team's mark_run_started/mark_run_finished helpers needed idempotency, had to keep
# notes when a finish had none, and had to fail clearly when no database was configured.
# runledger's CLI does all three, and `runledger exec` wraps a whole step as a run.
#
#   bash examples/03-shell-pipeline.sh          (uses ./.runledger, or DATABASE_URL)
set -euo pipefail

# Use the installed `runledger`, else this checkout's build, else its sources.
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v runledger >/dev/null 2>&1; then
  if [ -f "$here/../dist/cli/main.js" ]; then
    runledger() { node "$here/../dist/cli/main.js" "$@"; }
  else
    runledger() { node --import "$here/../node_modules/tsx/dist/loader.mjs" "$here/../src/cli/main.ts" "$@"; }
  fi
fi

# 1. A missing or wrong database configuration is a clear error, not a silent no-op.
if out=$(DATABASE_URL="mysql://wrong" runledger start --job extract 2>&1); then
  echo "expected a configuration error" >&2
  exit 1
fi
echo "misconfigured: $out"

# 2. Start is idempotent on the run id: a retried step gets the same run, not a second one.
run_id="genesis-$(date +%s)-$$"
runledger start --id "$run_id" --job extract --subject Genesis --notes "Initial extraction run" >/dev/null
again=$(runledger start --id "$run_id" --job extract --subject Genesis --notes "Initial extraction run")
[ "$again" = "$run_id" ] || { echo "idempotent start returned $again" >&2; exit 1; }
echo "started $run_id (twice, one run)"

# ... the step does its work, logging progress ...
runledger event "$run_id" progress --body '{"nouns":150}' >/dev/null

# 3. Finishing without notes keeps the notes written at the start.
runledger complete "$run_id" --output '{"nouns":150}' >/dev/null
notes=$(runledger runs show "$run_id" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).run.notes))')
[ "$notes" = "Initial extraction run" ] || { echo "notes lost: $notes" >&2; exit 1; }
echo "completed $run_id; notes kept: $notes"

# 4. exec wraps a whole command as a run: its output lines become events, its exit code
#    decides the status and is passed through.
runledger exec --job extract --subject Exodus -- bash -c 'echo "extracting Exodus"; echo "120 nouns"'
set +e
runledger exec --job extract --subject Leviticus -- bash -c 'echo "source file missing" >&2; exit 3'
code=$?
set -e
[ "$code" -eq 3 ] || { echo "exec should pass exit code 3 through, got $code" >&2; exit 1; }
echo "a failing step exits $code and its run is failed:"
runledger runs ls --job extract --status failed

echo "recipe 3 ok"
