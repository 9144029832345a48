#!/usr/bin/env bash
# Fuzz the admin API with schemathesis against a real `idp serve` on a fresh SQLite database.
#
# Usage: bash tests/admin_fuzz/run_schemathesis.sh   (from anywhere; uses ./.venv of the repository)
# Env:   VENV (default .venv), FUZZ_MAX_EXAMPLES (default 40 per operation), FUZZ_MAX_SECONDS (default 150),
#        FUZZ_SEED (default 20261130: every run generates the same cases; set another to explore further).
# Exits non-zero when schemathesis finds a failure (a 5xx, or a response that does not match the OpenAPI
# document) or when the server logged an error. Not part of the pytest run: .ci/run calls it as its own stage.
set -euo pipefail

cd "$(dirname "$0")/../.."
VENV="$(pwd)/${VENV:-.venv}"
IDP="$VENV/bin/idp"
PYTHON="$VENV/bin/python"
SCHEMATHESIS="$VENV/bin/schemathesis"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-40}"
MAX_SECONDS="${FUZZ_MAX_SECONDS:-150}"
# Fixed by default, so a failure in CI comes back on the next run and on a developer's machine.
SEED="${FUZZ_SEED:-20261130}"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# Only IDP_* from here: a developer's .env or environment must not point the fuzzer at a real database.
while IFS='=' read -r name _; do
    if [[ "$name" == IDP_* ]]; then unset "$name"; fi
done < <(env)
export IDP_DATABASE_URL="sqlite+aiosqlite:///$work/fuzz.db"
export IDP_ISSUER="$base"
export IDP_SECRET_KEY="fuzz-secret-key-fuzz-secret-key-0123456789"
export IDP_ENCRYPTION_KEY="fuzz-encryption-key-fuzz-encryption-key-01"
export IDP_ARGON2_MEMORY_KIB=1024
export IDP_ARGON2_TIME_COST=1
# Every request of the fuzzer carries a valid token, but some checks send none on purpose.
export IDP_ADMIN_MAX_FAILURES_PER_ADDRESS=100000
export IDP_LOG_LEVEL=INFO
export IDP_MANAGEMENT_PORT=0  # no second listener: nothing here scrapes /metrics
# The JSON Lines serializer for the import endpoint (tests/admin_fuzz/fuzz_hooks.py).
export PYTHONPATH="$(pwd)/tests/admin_fuzz${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=fuzz_hooks
cd "$work"  # no .env of the repository is read, and schemathesis leaves its files here

"$IDP" migrate >/dev/null
token="$("$IDP" admin-tokens create --name fuzz | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
printf '%s\n' 'a long fuzzing password' | "$IDP" users create --email seeded@example.com --name Seeded --password-stdin >/dev/null
"$IDP" clients create --name "Seeded board" --redirect-uri https://jobs.example/callback >/dev/null

"$IDP" serve --host 127.0.0.1 --port "$port" >"$work/server.log" 2>&1 &
server_pid=$!
healthy() {
    "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "$base/healthz" >/dev/null 2>&1
}
for _ in $(seq 1 200); do
    if healthy; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "idp serve exited before it answered" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! healthy; then
    echo "idp serve did not answer /healthz within 20 s" >&2
    cat "$work/server.log" >&2
    exit 1
fi

echo "schemathesis seed: $SEED (FUZZ_SEED to change it)"
set +e
"$SCHEMATHESIS" --no-color run "$base/admin/api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,unsupported_method,ignored_auth \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_SECONDS" \
    --workers 2 \
    --request-timeout 10 \
    --suppress-health-check all \
    --generation-database none \
    --seed "$SEED"
status=$?
set -e

# A handled 4xx logs nothing at ERROR; an unexpected exception does, even one whose response looked fine.
if grep -q '"level": *"ERROR"' "$work/server.log"; then
    echo "the server logged errors while being fuzzed:" >&2
    grep '"level": *"ERROR"' "$work/server.log" | head -n 20 >&2
    status=1
fi
exit "$status"
