#!/usr/bin/env bash
# Load test of keygate over loopback, against a local JWKS.
#
# Builds keygate in release mode, serves an RS256 JWKS from a local HTTP server, mints
# distinct RS256 tokens, starts keygate and drives it with wrk (installed with apt-get
# when missing) with the same connections and duration for each of:
#   1. GET /healthz
#   2. GET /protected with one repeated token
#   3. GET /protected cycling through $TOKENS distinct tokens (distinct users)
# and prints requests/s, p50, p99, non-2xx counts, the ratios to /healthz, the CPU
# shares of the server, the load generator and the rest of the machine, and the
# server's peak RSS after the distinct-token run. Any non-2xx response or socket
# error fails the script. Only loopback addresses are used.
#
# Knobs (environment): CONNECTIONS (64), DURATION seconds (10), TOKENS (10000),
# WORKERS (1), PIN (1: server and wrk on separate CPUs when there are enough).
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
TOKENS=${TOKENS:-10000}
WORKERS=${WORKERS:-1}
PIN=${PIN:-1}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/keygate-load.XXXXXX")
server_pid=
jwks_pid=

cleanup() {
    local pid
    for pid in $server_pid $jwks_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for $1 to answer 200.
wait_ok() {
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# User+system CPU ticks of a process (all its threads).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Busy and total ticks of the whole machine.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# --- build and tools -------------------------------------------------------------

say "building keygate (release)"
(cd "$root" && cargo build --release --bin keygate)
keygate=$target/release/keygate
[[ -x $keygate ]] || die "no binary at $keygate"

for tool in curl python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v wrk >/dev/null; then
    say "installing wrk"
    sudo=
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y wrk >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; } ||
        die "could not install wrk (apt-get install wrk)"
fi

python=python3
if ! python3 -c 'import cryptography' 2>/dev/null; then
    venv=$target/bench-venv
    if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import cryptography' 2>/dev/null; then
        say "installing cryptography into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet cryptography
    fi
    python=$venv/bin/python
fi

# --- keys, JWKS and tokens ---------------------------------------------------------

say "minting $TOKENS RS256 tokens"
mkdir -p "$work/jwks"
timeout 600 "$python" - "$work" "$TOKENS" <<'PY'
import base64, json, os, sys, time
from multiprocessing import Pool
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

work, count = sys.argv[1], int(sys.argv[2])

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def uint(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
numbers = key.public_key().public_numbers()
jwk = {"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256", "n": uint(numbers.n), "e": uint(numbers.e)}
with open(os.path.join(work, "jwks", "jwks.json"), "w") as f:
    json.dump({"keys": [jwk]}, f)
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "bench"}, separators=(",", ":")).encode())
now = int(time.time())

def mint(chunk):
    signer = serialization.load_pem_private_key(pem, password=None)
    out = []
    for i in chunk:
        claims = {"sub": f"user_bench{i:05d}", "sid": f"sess_bench{i:05d}", "iss": "https://issuer.bench",
                  "azp": "http://localhost:3000", "iat": now, "nbf": now, "exp": now + 3600}
        payload = b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}"
        signature = signer.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        out.append(f"{signing_input}.{b64(signature)}")
    return out

procs = max(1, os.cpu_count() or 1)
chunks = [range(start, count, procs) for start in range(procs)]
with Pool(procs) as pool:
    tokens = [t for part in pool.map(mint, chunks) for t in part]
with open(os.path.join(work, "tokens.txt"), "w") as f:
    f.write("\n".join(tokens) + "\n")
with open(os.path.join(work, "one-token.txt"), "w") as f:
    f.write(tokens[0] + "\n")
PY
[[ $(wc -l <"$work/tokens.txt") -eq $TOKENS ]] || die "minted the wrong number of tokens"

# wrk: every request is prepared once in init(), so each scenario costs the load
# generator the same per request; done() prints one machine-readable line.
cat >"$work/cycle.lua" <<'LUA'
local prepared = {}
local next_index = 0

function init(args)
    local path, tokens = args[1], args[2]
    if tokens then
        for token in io.lines(tokens) do
            prepared[#prepared + 1] = wrk.format("GET", path, { Authorization = "Bearer " .. token })
        end
    else
        prepared[1] = wrk.format("GET", path)
    end
end

function request()
    next_index = next_index % #prepared + 1
    return prepared[next_index]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.status, e.connect, e.read, e.write, e.timeout))
end
LUA

# --- servers -----------------------------------------------------------------------

cpus=$(nproc)
server_cpus= wrk_cpus=
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && ((WORKERS < cpus)); then
    server_cpus=0-$((WORKERS - 1))
    wrk_cpus=$WORKERS-$((cpus - 1))
fi
pinned() { # pinned CPUS COMMAND...: runs COMMAND on CPUS when pinning is on
    local set=$1
    shift
    if [[ -n $set ]]; then taskset -c "$set" "$@"; else "$@"; fi
}

jwks_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/jwks" "$jwks_port" >"$work/jwks.log" 2>&1 &
jwks_pid=$!
wait_ok "http://127.0.0.1:$jwks_port/jwks.json" 10 || die "the JWKS server did not start"

port=$(free_port)
base=http://127.0.0.1:$port
say "starting keygate on $base (WORKERS=$WORKERS${server_cpus:+, CPUs $server_cpus}; wrk${wrk_cpus:+ on CPUs $wrk_cpus})"
server_cmd=("$keygate" serve)
[[ -z $server_cpus ]] || server_cmd=(taskset -c "$server_cpus" "${server_cmd[@]}")
(
    cd "$work"
    exec env -i PATH="$PATH" HOME="$HOME" \
        BIND_ADDR="127.0.0.1:$port" \
        WORKERS="$WORKERS" \
        JWKS_URL="http://127.0.0.1:$jwks_port/jwks.json" \
        JWT_ISSUER="https://issuer.bench" \
        DATABASE_URL="sqlite://$work/bench.db?mode=rwc" \
        RUST_LOG=warn \
        "${server_cmd[@]}"
) >"$work/keygate.log" 2>&1 &
server_pid=$!
if ! wait_ok "$base/readyz" 30; then
    cat "$work/keygate.log" >&2
    die "keygate did not become ready"
fi
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$work/one-token.txt")" "$base/protected")
[[ $status == 200 ]] || die "a minted token was refused ($status): $(tail -n 5 "$work/keygate.log")"

# Sum of request counts by status class from /metrics (empty if the metric is absent).
non_2xx_served() {
    curl -fsS --max-time 5 "$base/metrics" |
        awk '/^keygate_http_request_duration_seconds_count\{/ && !/status="2/ { n += $NF } END { print n + 0 }'
}

# --- runs ---------------------------------------------------------------------------

clk=$(getconf CLK_TCK)
failed=0
declare -A rps eff p50 p99 bad srv gen rest

run() { # run NAME PATH [TOKENS_FILE]
    local name=$1 path=$2 tokens=${3:-}
    local before_bad after_bad s0 s1 m0 m1 out line real user sys
    say "$name: $CONNECTIONS connections, ${DURATION}s"
    before_bad=$(non_2xx_served)
    s0=$(cpu_ticks "$server_pid")
    m0=$(machine_ticks)
    local TIMEFORMAT='%R %U %S'
    { time pinned "$wrk_cpus" timeout $((DURATION + 30)) \
        wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s -s "$work/cycle.lua" "$base$path" \
        -- "$path" $tokens >"$work/$name.out"; } 2>"$work/$name.time"
    s1=$(cpu_ticks "$server_pid")
    m1=$(machine_ticks)
    after_bad=$(non_2xx_served)
    line=$(grep '^RESULT ' "$work/$name.out") || die "$name: no result from wrk: $(cat "$work/$name.out")"
    read -r real user sys <"$work/$name.time"
    eval "$(sed -E 's/^RESULT //; s/([a-z0-9_]+)=/w_\1=/g' <<<"$line")"
    rps[$name]=$(awk -v n="$w_requests" -v d="$w_duration_us" 'BEGIN { printf "%.0f", n / d * 1e6 }')
    # Requests served per second of server CPU: less sensitive to what else runs.
    eff[$name]=$(awk -v n="$w_requests" -v t="$((s1 - s0))" -v c="$clk" 'BEGIN { printf "%.0f", (t > 0 ? n / (t / c) : 0) }')
    p50[$name]=$(awk -v u="$w_p50_us" 'BEGIN { printf "%.2f", u / 1000 }')
    p99[$name]=$(awk -v u="$w_p99_us" 'BEGIN { printf "%.2f", u / 1000 }')
    bad[$name]=$((w_status + w_connect + w_read + w_write + w_timeout + after_bad - before_bad))
    # CPU shares in percent of ONE core, over the run's wall time.
    srv[$name]=$(awk -v t="$((s1 - s0))" -v c="$clk" -v r="$real" 'BEGIN { printf "%.0f", t / c / r * 100 }')
    gen[$name]=$(awk -v u="$user" -v s="$sys" -v r="$real" 'BEGIN { printf "%.0f", (u + s) / r * 100 }')
    rest[$name]=$(awk -v a="$m0" -v b="$m1" -v c="$cpus" -v s="${srv[$name]}" -v g="${gen[$name]}" '
        BEGIN { split(a, x, " "); split(b, y, " ");
                busy = (y[1] - x[1]) / (y[2] - x[2]) * c * 100; r = busy - s - g;
                printf "%.0f", r < 0 ? 0 : r }')
    if ((bad[$name] != 0)); then
        failed=1
        printf 'load.sh: %s: %d non-2xx responses or socket errors (wrk: status %d, connect %d, read %d, write %d, timeout %d; server non-2xx %d)\n' \
            "$name" "${bad[$name]}" "$w_status" "$w_connect" "$w_read" "$w_write" "$w_timeout" "$((after_bad - before_bad))" >&2
    fi
}

run healthz /healthz
run repeated /protected "$work/one-token.txt"
run distinct /protected "$work/tokens.txt"

hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")
metrics=$(curl -fsS --max-time 5 "$base/metrics")
hits=$(awk '/^keygate_token_cache_hits_total / { print $2 }' <<<"$metrics")
misses=$(awk '/^keygate_token_cache_misses_total / { print $2 }' <<<"$metrics")

# --- report -------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo
echo "keygate load test: $CONNECTIONS connections, ${DURATION}s per run, WORKERS=$WORKERS, $cpus CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
if [[ -n $server_cpus ]]; then
    echo "pinning: server on CPU $server_cpus, wrk (1 thread) on CPU $wrk_cpus"
else
    echo "pinning: none"
fi
echo "req/cpu-s: requests per second of server CPU time. CPU columns: % of one core over"
echo "the run for the server, the load generator (wrk) and everything else on the machine."
printf '%-9s %8s %9s %9s %9s %9s %9s %7s %6s %6s %6s\n' \
    run req/s 'x healthz' req/cpu-s 'x healthz' 'p50 ms' 'p99 ms' non-2xx server wrk other
for name in healthz repeated distinct; do
    printf '%-9s %8s %9s %9s %9s %9s %9s %7s %5s%% %5s%% %5s%%\n' "$name" \
        "${rps[$name]}" "$(ratio "${rps[$name]}" "${rps[healthz]}")" \
        "${eff[$name]}" "$(ratio "${eff[$name]}" "${eff[healthz]}")" \
        "${p50[$name]}" "${p99[$name]}" "${bad[$name]}" "${srv[$name]}" "${gen[$name]}" "${rest[$name]}"
done
echo "server peak RSS (VmHWM) after the distinct-token run: $((hwm_kib / 1024)) MiB ($hwm_kib KiB); VmRSS now $((rss_kib / 1024)) MiB"
echo "token cache over all runs: ${hits:-?} hits, ${misses:-?} misses ($TOKENS distinct tokens, TOKEN_CACHE_SIZE default)"

echo
echo "targets of issue 5 (as defined there, on requests/s; req/cpu-s analogue in brackets):"
awk -v r="${rps[repeated]}" -v h="${rps[healthz]}" -v re="${eff[repeated]}" -v he="${eff[healthz]}" 'BEGIN {
    printf "  /protected repeated >= 0.85 x /healthz: %.3f (%s) [%.3f]\n", r / h, r / h >= 0.85 ? "met" : "missed", re / he }'
floor_json=$target/criterion/verify/floor_rsa2048_pkcs1_sha256/new/estimates.json
if [[ -f $floor_json ]] && command -v jq >/dev/null; then
    floor_ns=$(jq '.median.point_estimate' "$floor_json")
    awk -v d="${rps[distinct]}" -v h="${rps[healthz]}" -v de="${eff[distinct]}" -v he="${eff[healthz]}" \
        -v f="$floor_ns" -v w="$WORKERS" 'BEGIN {
        per_core = 1e9 / f; cap = w * per_core; bound = h < cap ? h : cap; ebound = he < per_core ? he : per_core;
        printf "  /protected distinct >= 0.75 x min(healthz %.0f, %d core(s) x floor %.0f/s): %.3f (%s) [%.3f of min(%.0f, %.0f)]\n",
            h, w, per_core, d / bound, d / bound >= 0.75 ? "met" : "missed", de / ebound, he, per_core }'
    echo "    (RSA floor from the last 'cargo bench --bench verify' in $target/criterion)"
else
    echo "  /protected distinct: run 'cargo bench --bench verify' first for the RSA floor"
fi
awk -v k="$hwm_kib" 'BEGIN { printf "  peak RSS <= 64 MiB: %.1f MiB (%s)\n", k / 1024, k <= 65536 ? "met" : "missed" }'

((failed == 0)) || die "some requests did not succeed"
