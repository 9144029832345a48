#!/usr/bin/env bash
# Requests per second of three OIDC endpoints on PostgreSQL, one idp process on one core, wrk on the other.
#
#   1. GET  /.well-known/openid-configuration
#   2. POST /token       grant_type=client_credentials, client_secret_basic
#   3. POST /introspect  a live access token (fetched just before the run), client_secret_basic
#
# Not a test; prints numbers for this machine. See bench/README.md. Only ever talks to 127.0.0.1.
# Settings (environment, all optional):
#   BENCH_DURATION=15     seconds of each measured wrk run     BENCH_WARMUP=5   seconds of the warm-up run before it
#   BENCH_CONNECTIONS=32  wrk connections (one wrk thread)     BENCH_PORT=18080 port idp listens on
#   BENCH_LOG_LEVELS="WARNING INFO"   one server start per level, every endpoint under each
#   BENCH_ENDPOINTS="discovery token introspect"
#   BENCH_SERVER_CPU=0    BENCH_LOAD_CPU=1    cores for idp and for wrk (taskset -c)
#   BENCH_DB=idp_bench    dropped and re-created; must start with idp_bench
#   BENCH_KEEP_DB=0       1 keeps the database afterwards (it is dropped on exit otherwise)
#   BENCH_PROFILE=        an endpoint (e.g. token) to profile with py-spy under load at the first log level
#   BENCH_PROFILE_SECONDS=10
#   BENCH_OUT=            directory for raw output (default: a new /tmp/idp-oidc-bench.XXXXXX)
#   BENCH_QUIET_WAIT=0    up to this many seconds, wait before each endpoint until the machine is idle (<10% busy)
#   BENCH_RETRIES=0       measure an endpoint again (up to this many times) when other load disturbed the run
#   BENCH_IDP=            the idp executable to run (default .venv/bin/idp), e.g. a wrapper for an experiment
# Other IDP_* variables in the environment reach the server (e.g. IDP_DATABASE_POOL_SIZE=20 to try a bigger pool).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
VENV=${BENCH_VENV:-$ROOT/.venv}
PY="$VENV/bin/python"
IDP=${BENCH_IDP:-$VENV/bin/idp}
HOST=127.0.0.1 # never anything else
PORT=${BENCH_PORT:-18080}
BASE="http://$HOST:$PORT"
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
LEVELS=${BENCH_LOG_LEVELS:-WARNING INFO}
ENDPOINTS=${BENCH_ENDPOINTS:-discovery token introspect}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
DB=${BENCH_DB:-idp_bench}
KEEP_DB=${BENCH_KEEP_DB:-0}
PROFILE=${BENCH_PROFILE:-}
PROFILE_SECONDS=${BENCH_PROFILE_SECONDS:-10}
QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
RETRIES=${BENCH_RETRIES:-0}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/idp-oidc-bench.XXXXXX)}
export PGHOST=$HOST PGPORT=5432 PGUSER=postgres PGCONNECT_TIMEOUT=5
DB_URL="postgresql+asyncpg://postgres@$HOST:5432/$DB"

SERVER_PID=""
BACKGROUND_PIDS=()
DB_CREATED=0

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	for pid in "${BACKGROUND_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	stop_server
	if [[ $DB_CREATED == 1 && $KEEP_DB != 1 ]]; then
		psql -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	exit "$status"
}

stop_server() {
	[[ -n $SERVER_PID ]] || return 0
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		# idp lets in-flight requests finish for up to 20 s; give it 25, then stop it hard.
		for _ in $(seq 250); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

trap cleanup EXIT
trap 'exit 130' INT TERM

check_setup() {
	[[ $DB =~ ^idp_bench[a-z0-9_]*$ ]] || die "BENCH_DB must match idp_bench[a-z0-9_]* (it is dropped), got '$DB'"
	for n in "$DURATION" "$WARMUP" "$CONNECTIONS" "$PORT" "$PROFILE_SECONDS" "$SERVER_CPU" "$LOAD_CPU" "$QUIET_WAIT" "$RETRIES"; do
		[[ $n =~ ^[0-9]+$ ]] || die "numeric settings must be plain integers (seconds, counts), got '$n'"
	done
	for tool in wrk taskset psql curl timeout; do
		command -v "$tool" >/dev/null || die "$tool is missing (wrk: apt-get update && apt-get install -y wrk)"
	done
	[[ -x $IDP ]] || die "no $IDP; install first: python3 -m venv .venv && .venv/bin/pip install -e ."
	local cpus
	cpus=$(nproc)
	((SERVER_CPU < cpus && LOAD_CPU < cpus)) || die "need CPUs $SERVER_CPU and $LOAD_CPU; this machine has $cpus"
	[[ $SERVER_CPU != "$LOAD_CPU" ]] || say "warning: server and wrk share CPU $SERVER_CPU"
	if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
		die "something already listens on $HOST:$PORT; set BENCH_PORT"
	fi
	if [[ -n $PROFILE ]] && ! [[ -x $VENV/bin/py-spy ]] && ! command -v py-spy >/dev/null; then
		die "BENCH_PROFILE needs py-spy: $VENV/bin/pip install py-spy"
	fi
	mkdir -p "$OUT"
	chmod 700 "$OUT"
	rm -f "$OUT/results.jsonl" "$OUT/disturbed.jsonl" # a reused BENCH_OUT starts afresh
}

describe_machine() {
	{
		echo "date: $(date -Is)"
		echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
		echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
		echo "python: $("$PY" -c 'import platform; print(platform.python_implementation(), platform.python_version())')"
		echo "packages: $("$PY" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("uvicorn", "starlette", "sqlalchemy", "asyncpg")))')"
		echo "event loop / http: $("$PY" -c '
import importlib.util as u
print("uvloop" if u.find_spec("uvloop") else "asyncio", "/", "httptools" if u.find_spec("httptools") else "h11")')"
		echo "postgres: $(psql -Atq -d postgres -c 'SHOW server_version')"
		echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
		echo "load: server on CPU $SERVER_CPU, wrk -t1 -c$CONNECTIONS on CPU $LOAD_CPU, PostgreSQL unpinned"
		echo "runs: ${WARMUP}s warm-up + ${DURATION}s measured per endpoint; log levels: $LEVELS"
		echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
	} | tee "$OUT/machine.txt" >&2
}

setup_database() {
	say "database $DB: drop, create, migrate"
	psql -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
	DB_CREATED=1
	(cd "$OUT" && IDP_DATABASE_URL=$DB_URL "$IDP" migrate >/dev/null)
	say "registering the client (idp clients create --name bench --grant-type client_credentials)"
	(cd "$OUT" && IDP_DATABASE_URL=$DB_URL "$IDP" clients create --name bench --grant-type client_credentials) \
		>"$OUT/client.json"
	chmod 600 "$OUT/client.json"
	AUTH=$("$PY" "$BENCH/oidc_helper.py" basic <"$OUT/client.json")
}

start_server() {
	local level=$1
	say "starting idp serve --workers 1 on CPU $SERVER_CPU, IDP_LOG_LEVEL=$level"
	# cwd is the output directory, so a stray .env in the checkout cannot change the settings.
	(
		cd "$OUT"
		exec env IDP_DATABASE_URL="$DB_URL" IDP_LOG_LEVEL="$level" IDP_ISSUER="$BASE" \
			taskset -c "$SERVER_CPU" "$IDP" serve --host "$HOST" --port "$PORT" --workers 1
	) >"$OUT/server-$level.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 300); do
		kill -0 "$SERVER_PID" 2>/dev/null || die "idp exited at start-up; see $OUT/server-$level.log"
		if curl -fsS -o /dev/null --max-time 2 "$BASE/readyz" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "idp did not become ready within 30 s; see $OUT/server-$level.log"
}

fresh_token() {
	curl -fsS --max-time 5 -H "Authorization: $AUTH" -d grant_type=client_credentials "$BASE/token" |
		"$PY" "$BENCH/oidc_helper.py" field access_token
}

# Sets BENCH_METHOD, BENCH_BODY, BENCH_AUTH and PATH_ for one endpoint, and checks one request by hand.
prepare() {
	local endpoint=$1 answer
	case $endpoint in
	discovery)
		PATH_=/.well-known/openid-configuration BENCH_METHOD=GET BENCH_BODY="" BENCH_AUTH=""
		;;
	token)
		PATH_=/token BENCH_METHOD=POST BENCH_BODY="grant_type=client_credentials" BENCH_AUTH=$AUTH
		;;
	introspect)
		PATH_=/introspect BENCH_METHOD=POST BENCH_AUTH=$AUTH
		BENCH_BODY="token=$(fresh_token)&token_type_hint=access_token"
		;;
	*) die "unknown endpoint '$endpoint' (discovery, token, introspect)" ;;
	esac
	export BENCH_METHOD BENCH_BODY BENCH_AUTH
	local args=(-fsS --max-time 5 -X "$BENCH_METHOD")
	[[ -z $BENCH_AUTH ]] || args+=(-H "Authorization: $BENCH_AUTH")
	[[ -z $BENCH_BODY ]] || args+=(-H "Content-Type: application/x-www-form-urlencoded" --data-raw "$BENCH_BODY")
	answer=$(curl "${args[@]}" "$BASE$PATH_") || die "$endpoint: the request fails before the benchmark"
	if [[ $endpoint == introspect && $answer != *'"active":true'* ]]; then
		die "introspect: the token is not active before the benchmark: $answer"
	fi
}

run_wrk() { # seconds output-file [extra wrk options]
	local seconds=$1 out=$2
	shift 2
	# The timeout is a backstop only; wrk stops itself after -d.
	timeout $((seconds + 30)) taskset -c "$LOAD_CPU" \
		wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 10s -s "$BENCH/post.lua" "$@" "$BASE$PATH_" >"$out" 2>&1 ||
		die "wrk failed; see $out"
}

cpu_snapshot() { "$PY" "$BENCH/oidc_helper.py" cpu "$SERVER_PID" "$DB" $$ >"$1"; }

measure() {
	local endpoint=$1 level=$2 tag="$1-$2" attempt=0
	while :; do
		if ((QUIET_WAIT > 0)); then
			"$PY" "$BENCH/oidc_helper.py" wait-quiet "$QUIET_WAIT"
		fi
		prepare "$endpoint"
		say "$endpoint ($level): ${WARMUP}s warm-up, ${DURATION}s measured, -c$CONNECTIONS"
		run_wrk "$WARMUP" "$OUT/warmup-$tag.txt"
		cpu_snapshot "$OUT/cpu-before-$tag.json"
		run_wrk "$DURATION" "$OUT/wrk-$tag.txt" --latency
		cpu_snapshot "$OUT/cpu-after-$tag.json"
		"$PY" "$BENCH/oidc_helper.py" row "$endpoint" "$level" "$OUT/wrk-$tag.txt" \
			"$OUT/cpu-before-$tag.json" "$OUT/cpu-after-$tag.json" >"$OUT/row-$tag.json"
		"$PY" "$BENCH/oidc_helper.py" brief <"$OUT/row-$tag.json" >&2
		if ((attempt >= RETRIES)) || ! "$PY" "$BENCH/oidc_helper.py" disturbed <"$OUT/row-$tag.json"; then
			break
		fi
		attempt=$((attempt + 1))
		say "other load during the run; measuring again ($attempt of $RETRIES)"
		cat "$OUT/row-$tag.json" >>"$OUT/disturbed.jsonl"
	done
	cat "$OUT/row-$tag.json" >>"$OUT/results.jsonl"
}

profile() {
	local endpoint=$1 level=$2 spy
	spy=$(command -v "$VENV/bin/py-spy" || command -v py-spy)
	if ((QUIET_WAIT > 0)); then
		"$PY" "$BENCH/oidc_helper.py" wait-quiet "$QUIET_WAIT"
	fi
	prepare "$endpoint"
	say "profiling $endpoint ($level) with py-spy for ${PROFILE_SECONDS}s under the same load"
	local seconds=$((2 * PROFILE_SECONDS + 10))
	# In the background, started directly so that $! is timeout(1), which passes a kill on to wrk.
	timeout $((seconds + 30)) taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" --timeout 10s \
		-s "$BENCH/post.lua" "$BASE$PATH_" >"$OUT/wrk-profile-$endpoint.txt" 2>&1 &
	BACKGROUND_PIDS+=($!)
	sleep 3
	# py-spy samples from the load core so the server's core is left to the server.
	taskset -c "$LOAD_CPU" timeout $((PROFILE_SECONDS + 20)) "$spy" record --pid "$SERVER_PID" -d "$PROFILE_SECONDS" \
		--format raw -o "$OUT/profile-$endpoint.txt" >"$OUT/py-spy.log" 2>&1 || die "py-spy failed; see $OUT/py-spy.log"
	taskset -c "$LOAD_CPU" timeout $((PROFILE_SECONDS + 20)) "$spy" record --pid "$SERVER_PID" -d "$PROFILE_SECONDS" \
		-o "$OUT/profile-$endpoint.svg" >>"$OUT/py-spy.log" 2>&1 || die "py-spy failed; see $OUT/py-spy.log"
	wait "${BACKGROUND_PIDS[-1]}" || true
	"$PY" "$BENCH/oidc_helper.py" profile-top "$OUT/profile-$endpoint.txt" 15 | tee "$OUT/profile-$endpoint-top.txt"
}

main() {
	check_setup
	describe_machine
	setup_database
	local first=1
	for level in $LEVELS; do
		start_server "$level"
		for endpoint in $ENDPOINTS; do
			measure "$endpoint" "$level"
		done
		if [[ -n $PROFILE && $first == 1 ]]; then
			profile "$PROFILE" "$level"
		fi
		first=0
		stop_server
	done
	echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
	echo
	cat "$OUT/machine.txt"
	echo
	"$PY" "$BENCH/oidc_helper.py" report "$OUT/results.jsonl" | tee "$OUT/report.txt"
	echo
	echo "raw wrk output, server logs and CPU snapshots: $OUT"
}

main "$@"
