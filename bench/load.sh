#!/usr/bin/env bash
# Load test of keygate over loopback, against a local JWKS.
#
# Builds keygate and the `hello` example (an Actix-web hello world: the HTTP ceiling)
# in release mode, serves an RS256 JWKS from a local HTTP server, mints distinct RS256
# tokens, and drives with wrk (installed with apt-get when missing), with the same
# connections and duration for each of:
#   1. hello      GET / of the hello world
#   1b. hello+rsa GET / of the hello world doing one bare RSA-2048 verify per request
#   2. healthz    GET /healthz of keygate
#   3. repeated   GET /protected with one repeated token
#   4. distinct   GET /protected cycling through $CACHED distinct tokens, which fit the
#                 default 10 000-entry cache (after the first pass every request hits)
#   5. uncached   GET /protected cycling through all $TOKENS distinct tokens on a second
#                 keygate with TOKEN_CACHE_SIZE=0: every request verifies a signature
# and prints requests/s, server CPU per request, p50, p99, non-2xx counts, the ratios
# to /healthz, the CPU shares of the server, the load generator and the rest of the
# machine, and keygate's peak RSS. Any non-2xx response or socket error fails the
# script. Only loopback addresses are used.
#
# Knobs (environment): CONNECTIONS (64), DURATION seconds (10), TOKENS (20000),
# CACHED (10000), WORKERS (1), PIN (1: server and wrk on separate CPUs when there are
# enough), PIPELINE (1: requests wrk writes at once on a connection; more makes the
# per-request kernel cost of waking the load generator small in every run), PROFILE (0; 1: sample the uncached keygate with `perf record` during its
# run and print where its CPU time goes).
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
TOKENS=${TOKENS:-20000}
CACHED=${CACHED:-10000}
PROFILE=${PROFILE:-0}
PIPELINE=${PIPELINE:-1}
WORKERS=${WORKERS:-1}
PIN=${PIN:-1}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/keygate-load.XXXXXX")
server_pid=
uncached_pid=
hello_pid=
hello_rsa_pid=
jwks_pid=

cleanup() {
    local pid
    for pid in $server_pid $uncached_pid $hello_pid $hello_rsa_pid $jwks_pid; do
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

say "building keygate and the hello example (release)"
(cd "$root" && cargo build --release --bin keygate --example hello)
keygate=$target/release/keygate
hello=$target/release/examples/hello
[[ -x $keygate ]] || die "no binary at $keygate"
[[ -x $hello ]] || die "no binary at $hello"

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
head -n "$CACHED" "$work/tokens.txt" >"$work/cached-tokens.txt"

# wrk: every request is prepared once in init(), so each scenario costs the load
# generator the same per request; done() prints one machine-readable line.
cat >"$work/cycle.lua" <<'LUA'
local prepared = {}
local next_index = 0
local depth = 1

function init(args)
    local path, tokens = args[1], args[2]
    depth = tonumber(args[3]) or 1
    if tokens == "-" then tokens = nil end
    if tokens then
        for token in io.lines(tokens) do
            prepared[#prepared + 1] = wrk.format("GET", path, { Authorization = "Bearer " .. token })
        end
    else
        prepared[1] = wrk.format("GET", path)
    end
end

function request()
    if depth == 1 then
        next_index = next_index % #prepared + 1
        return prepared[next_index]
    end
    local batch = {}
    for i = 1, depth do
        next_index = next_index % #prepared + 1
        batch[i] = prepared[next_index]
    end
    return table.concat(batch)
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

# start_keygate NAME CACHE_SIZE: starts a keygate, sets started_pid and started_base.
start_keygate() {
    local name=$1 cache=$2 port
    port=$(free_port)
    started_base=http://127.0.0.1:$port
    say "starting keygate ($name, TOKEN_CACHE_SIZE=$cache) on $started_base (WORKERS=$WORKERS${server_cpus:+, CPUs $server_cpus}; wrk${wrk_cpus:+ on CPUs $wrk_cpus})"
    mkdir -p "$work/$name"
    local cmd=("$keygate" serve)
    [[ -z $server_cpus ]] || cmd=(taskset -c "$server_cpus" "${cmd[@]}")
    (
        cd "$work/$name"
        exec env -i PATH="$PATH" HOME="$HOME" \
            BIND_ADDR="127.0.0.1:$port" \
            WORKERS="$WORKERS" \
            JWKS_URL="http://127.0.0.1:$jwks_port/jwks.json" \
            JWT_ISSUER="https://issuer.bench" \
            TOKEN_CACHE_SIZE="$cache" \
            DATABASE_URL="sqlite://$work/$name/bench.db?mode=rwc" \
            RUST_LOG=warn \
            "${cmd[@]}"
    ) >"$work/$name.log" 2>&1 &
    started_pid=$!
    if ! wait_ok "$started_base/readyz" 30; then
        cat "$work/$name.log" >&2
        die "keygate ($name) did not become ready"
    fi
    local status
    status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$work/one-token.txt")" "$started_base/protected")
    [[ $status == 200 ]] || die "a minted token was refused ($status): $(tail -n 5 "$work/$name.log")"
}

start_keygate cached 10000
server_pid=$started_pid
base=$started_base
start_keygate uncached 0
uncached_pid=$started_pid
uncached_base=$started_base

hello_port=$(free_port)
hello_base=http://127.0.0.1:$hello_port
say "starting the hello world on $hello_base"
hello_cmd=("$hello")
[[ -z $server_cpus ]] || hello_cmd=(taskset -c "$server_cpus" "$hello")
HELLO_ADDR="127.0.0.1:$hello_port" WORKERS="$WORKERS" "${hello_cmd[@]}" >"$work/hello.log" 2>&1 &
hello_pid=$!
wait_ok "$hello_base/" 30 || die "the hello world did not start"
hello_rsa_port=$(free_port)
hello_rsa_base=http://127.0.0.1:$hello_rsa_port
HELLO_VERIFY=1 HELLO_ADDR="127.0.0.1:$hello_rsa_port" WORKERS="$WORKERS" "${hello_cmd[@]}" >"$work/hello-rsa.log" 2>&1 &
hello_rsa_pid=$!
wait_ok "$hello_rsa_base/" 30 || die "the hello world with RSA did not start"

# Sum of request counts by status class from a keygate's /metrics (0 for the hello world).
non_2xx_served() { # non_2xx_served BASE
    [[ $1 == "$hello_base" || $1 == "$hello_rsa_base" ]] && { echo 0; return; }
    curl -fsS --max-time 5 "$1/metrics" |
        awk '/^keygate_http_request_duration_seconds_count\{/ && !/status="2/ { n += $NF } END { print n + 0 }'
}

# --- runs ---------------------------------------------------------------------------

clk=$(getconf CLK_TCK)
failed=0
declare -A rps eff cpu_us p50 p99 bad srv gen rest

run() { # run NAME SERVER_PID BASE PATH [TOKENS_FILE]
    local name=$1 pid=$2 url=$3 path=$4 tokens=${5:-}
    local before_bad after_bad s0 s1 m0 m1 out line real user sys
    say "$name: $CONNECTIONS connections, ${DURATION}s"
    before_bad=$(non_2xx_served "$url")
    s0=$(cpu_ticks "$pid")
    m0=$(machine_ticks)
    local TIMEFORMAT='%R %U %S'
    { time pinned "$wrk_cpus" timeout $((DURATION + 30)) \
        wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s -s "$work/cycle.lua" "$url$path" \
        -- "$path" "${tokens:--}" "$PIPELINE" >"$work/$name.out"; } 2>"$work/$name.time"
    s1=$(cpu_ticks "$pid")
    m1=$(machine_ticks)
    after_bad=$(non_2xx_served "$url")
    line=$(grep '^RESULT ' "$work/$name.out") || die "$name: no result from wrk: $(cat "$work/$name.out")"
    read -r real user sys <"$work/$name.time"
    eval "$(sed -E 's/^RESULT //; s/([a-z0-9_]+)=/w_\1=/g' <<<"$line")"
    rps[$name]=$(awk -v n="$w_requests" -v d="$w_duration_us" 'BEGIN { printf "%.0f", n / d * 1e6 }')
    # Requests served per second of server CPU: less sensitive to what else runs.
    eff[$name]=$(awk -v n="$w_requests" -v t="$((s1 - s0))" -v c="$clk" 'BEGIN { printf "%.0f", (t > 0 ? n / (t / c) : 0) }')
    # Microseconds of server CPU (user + system, every thread) per request.
    cpu_us[$name]=$(awk -v n="$w_requests" -v t="$((s1 - s0))" -v c="$clk" 'BEGIN { printf "%.1f", (n > 0 ? t / c / n * 1e6 : 0) }')
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

run hello "$hello_pid" "$hello_base" /
if [[ $PROFILE == 1 ]]; then
    perf record -e cpu-clock -F 999 -g -p "$hello_rsa_pid" -o "$target/load-perf-hello-rsa.data" >/dev/null 2>&1 &
    perf_rsa_pid=$!
fi
run hello+rsa "$hello_rsa_pid" "$hello_rsa_base" /
if [[ $PROFILE == 1 ]]; then
    kill -INT "$perf_rsa_pid" 2>/dev/null || true
    wait "$perf_rsa_pid" 2>/dev/null || true
fi
run healthz "$server_pid" "$base" /healthz
run repeated "$server_pid" "$base" /protected "$work/one-token.txt"
run distinct "$server_pid" "$base" /protected "$work/cached-tokens.txt"
perf_pid=
if [[ $PROFILE == 1 ]]; then
    command -v perf >/dev/null || die "PROFILE=1 needs perf (apt-get install linux-perf)"
    perf record -e cpu-clock -F 999 -g -p "$uncached_pid" -o "$target/load-perf.data" >/dev/null 2>&1 &
    perf_pid=$!
fi
run uncached "$uncached_pid" "$uncached_base" /protected "$work/tokens.txt"
if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
fi

hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")
metrics=$(curl -fsS --max-time 5 "$base/metrics")
hits=$(awk '/^keygate_token_cache_hits_total / { print $2 }' <<<"$metrics")
misses=$(awk '/^keygate_token_cache_misses_total / { print $2 }' <<<"$metrics")

# --- report -------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

echo
echo "keygate load test: $CONNECTIONS connections, pipeline depth $PIPELINE, ${DURATION}s per run, WORKERS=$WORKERS, $cpus CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
if [[ -n $server_cpus ]]; then
    echo "pinning: server on CPU $server_cpus, wrk (1 thread) on CPU $wrk_cpus"
else
    echo "pinning: none"
fi
echo "req/cpu-s: requests per second of server CPU time. CPU columns: % of one core over"
echo "the run for the server, the load generator (wrk) and everything else on the machine."
printf '%-9s %8s %9s %9s %9s %10s %9s %9s %7s %6s %6s %6s\n' \
    run req/s 'x healthz' req/cpu-s 'x healthz' 'cpu us/req' 'p50 ms' 'p99 ms' non-2xx server wrk other
for name in hello hello+rsa healthz repeated distinct uncached; do
    printf '%-9s %8s %9s %9s %9s %10s %9s %9s %7s %5s%% %5s%% %5s%%\n' "$name" \
        "${rps[$name]}" "$(ratio "${rps[$name]}" "${rps[healthz]}")" \
        "${eff[$name]}" "$(ratio "${eff[$name]}" "${eff[healthz]}")" "${cpu_us[$name]}" \
        "${p50[$name]}" "${p99[$name]}" "${bad[$name]}" "${srv[$name]}" "${gen[$name]}" "${rest[$name]}"
done
echo "keygate (cached) peak RSS (VmHWM): $((hwm_kib / 1024)) MiB ($hwm_kib KiB); VmRSS now $((rss_kib / 1024)) MiB"
echo "token cache of the cached keygate: ${hits:-?} hits, ${misses:-?} misses ($CACHED distinct tokens, TOKEN_CACHE_SIZE=10000)"

echo
echo "targets (requests/s; req/cpu-s analogue in brackets):"
awk -v r="${rps[repeated]}" -v h="${rps[healthz]}" -v re="${eff[repeated]}" -v he="${eff[healthz]}" 'BEGIN {
    printf "  /protected repeated >= 0.85 x /healthz: %.3f (%s) [%.3f]\n", r / h, r / h >= 0.85 ? "met" : "missed", re / he }'
floor_json=$target/criterion/verify/floor_rsa2048_pkcs1_sha256/new/estimates.json
if [[ -f $floor_json ]] && command -v jq >/dev/null; then
    floor_ns=$(jq '.median.point_estimate' "$floor_json")
    awk -v u="${cpu_us[uncached]}" -v h="${cpu_us[hello]}" -v f="$floor_ns" 'BEGIN {
        floor_us = f / 1000; bound = 1.25 * (h + floor_us);
        printf "  uncached /protected CPU/req <= 1.25 x (hello %.1f us + one RSA-2048 verify %.1f us) = %.1f us: %.1f us = %.3f x (h + v) (%s)\n",
            h, floor_us, bound, u, u / (h + floor_us), u <= bound ? "met" : "missed" }'
    echo "    (RSA floor from the last 'cargo bench --bench verify' in $target/criterion)"
else
    echo "  uncached /protected: run 'cargo bench --bench verify' first for the RSA floor"
fi
awk -v u="${cpu_us[uncached]}" -v hr="${cpu_us[hello+rsa]}" 'BEGIN {
    printf "  uncached /protected CPU/req <= 1.25 x hello+rsa (the same work in one server, at the same rate) %.1f us: %.1f us = %.3f x (%s)\n",
        hr, u, u / hr, u <= 1.25 * hr ? "met" : "missed" }'
awk -v k="$hwm_kib" 'BEGIN { printf "  peak RSS <= 64 MiB: %.1f MiB (%s)\n", k / 1024, k <= 65536 ? "met" : "missed" }'

if [[ -n $perf_pid ]]; then
    echo
    echo "where the uncached keygate's CPU went (perf, self time, top 30 symbols; data in $target/load-perf.data):"
    perf report -i "$target/load-perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        awk '/^ +[0-9.]+%/ && n < 30 { n++; line = $0; sub(/ +- +- *$/, "", line); print substr(line, 1, 110) }'
    echo
    echo "by crate or library (self time):"
    perf report -i "$target/load-perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        awk '/^ +[0-9.]+%/ { pct = $1; sub("%", "", pct); sym = $0;
             c = "other";
             if (sym ~ /aws_lc|bn_|sha256|RSA_|rsa_/) c = "aws-lc (crypto)";
             else if (sym ~ /keygate/) c = "keygate";
             else if (sym ~ /serde_json|serde/) c = "serde/serde_json";
             else if (sym ~ /actix|h1::|http::/) c = "actix-web/actix-http";
             else if (sym ~ /sqlite|sqlx/) c = "sqlx/sqlite (user writes)";
             else if (sym ~ /prometheus/) c = "prometheus";
             else if (sym ~ /quick_cache/) c = "quick_cache";
             else if (sym ~ /malloc|free|memmove|memcpy|memset|memcmp/) c = "libc (alloc, mem*)";
             else if (sym ~ /kernel|\[k\]/) c = "kernel";
             total[c] += pct }
             END { for (c in total) printf "  %6.2f%%  %s\n", total[c], c }' | sort -rn
fi

((failed == 0)) || die "some requests did not succeed"
