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
#   6. clerk-rs   the same tokens against an Actix-web app guarded by the published
#                 clerk-rs crate (bench/clerk-rs: its actix middleware, its JWKS
#                 provider on the local JWKS server), which verifies every request
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

TOKENS=${TOKENS:-20000}
CACHED=${CACHED:-10000}
PROFILE=${PROFILE:-0}
WORKERS=${WORKERS:-1}
PIN=${PIN:-1}
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_binaries
say "building the clerk-rs comparison (release)"
cargo build --release --locked --manifest-path "$root/bench/clerk-rs/Cargo.toml" --target-dir "$target/clerk-rs"
clerk=$target/clerk-rs/release/clerk-rs-bench
[[ -x $clerk ]] || die "no binary at $clerk"

setup_tools
mint_tokens "$TOKENS"
head -n "$CACHED" "$work/tokens.txt" >"$work/cached-tokens.txt"

# --- servers -----------------------------------------------------------------------

server_cpus= wrk_cpus=
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && ((WORKERS < cpus)); then
    server_cpus=0-$((WORKERS - 1))
    wrk_cpus=$WORKERS-$((cpus - 1))
fi

serve_jwks
bearer="Authorization: Bearer $(cat "$work/one-token.txt")"
start_keygate cached WORKERS="$WORKERS" TOKEN_CACHE_SIZE=10000
server_pid=$started_pid
base=$started_base
expect_status 200 "$base/protected" -H "$bearer"
start_keygate uncached WORKERS="$WORKERS" TOKEN_CACHE_SIZE=0
uncached_pid=$started_pid
uncached_base=$started_base
expect_status 200 "$uncached_base/protected" -H "$bearer"

hello_port=$(free_port)
hello_base=http://127.0.0.1:$hello_port
say "starting the hello world on $hello_base"
hello_cmd=("$hello")
[[ -z $server_cpus ]] || hello_cmd=(taskset -c "$server_cpus" "$hello")
HELLO_ADDR="127.0.0.1:$hello_port" WORKERS="$WORKERS" "${hello_cmd[@]}" >"$work/hello.log" 2>&1 &
hello_pid=$!
track "$hello_pid"
wait_ok "$hello_base/" 30 || die "the hello world did not start"
hello_rsa_port=$(free_port)
hello_rsa_base=http://127.0.0.1:$hello_rsa_port
HELLO_VERIFY=1 HELLO_ADDR="127.0.0.1:$hello_rsa_port" WORKERS="$WORKERS" "${hello_cmd[@]}" >"$work/hello-rsa.log" 2>&1 &
hello_rsa_pid=$!
track "$hello_rsa_pid"
wait_ok "$hello_rsa_base/" 30 || die "the hello world with RSA did not start"
clerk_port=$(free_port)
clerk_base=http://127.0.0.1:$clerk_port
say "starting the clerk-rs app on $clerk_base"
clerk_cmd=("$clerk")
[[ -z $server_cpus ]] || clerk_cmd=(taskset -c "$server_cpus" "$clerk")
CLERK_API_URL="$jwks_base" CLERK_ADDR="127.0.0.1:$clerk_port" WORKERS="$WORKERS" "${clerk_cmd[@]}" >"$work/clerk-rs.log" 2>&1 &
clerk_pid=$!
track "$clerk_pid"
for _ in $(seq 150); do
    curl -s -o /dev/null "$clerk_base/protected" -H "$bearer" && break
    sleep 0.2
done
expect_status 200 "$clerk_base/protected" -H "$bearer"

# --- runs ---------------------------------------------------------------------------

run hello "$hello_base/" - - server="$hello_pid"
if [[ $PROFILE == 1 ]]; then
    perf record -e cpu-clock -F 999 -g -p "$hello_rsa_pid" -o "$target/load-perf-hello-rsa.data" >/dev/null 2>&1 &
    perf_rsa_pid=$!
fi
run hello+rsa "$hello_rsa_base/" - - server="$hello_rsa_pid"
if [[ $PROFILE == 1 ]]; then
    kill -INT "$perf_rsa_pid" 2>/dev/null || true
    wait "$perf_rsa_pid" 2>/dev/null || true
fi
run healthz "$base/healthz" - "$base" server="$server_pid"
run repeated "$base/protected" "$work/one-token.txt" "$base" server="$server_pid"
run distinct "$base/protected" "$work/cached-tokens.txt" "$base" server="$server_pid"
perf_pid=
if [[ $PROFILE == 1 ]]; then
    command -v perf >/dev/null || die "PROFILE=1 needs perf (apt-get install linux-perf)"
    perf record -e cpu-clock -F 999 -g -p "$uncached_pid" -o "$target/load-perf.data" >/dev/null 2>&1 &
    perf_pid=$!
fi
run uncached "$uncached_base/protected" "$work/tokens.txt" "$uncached_base" server="$uncached_pid"
if [[ -n $perf_pid ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
fi
run clerk-rs "$clerk_base/protected" "$work/tokens.txt" - server="$clerk_pid"

hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")
metrics=$(curl -fsS --max-time 5 "$base/metrics")
hits=$(awk '/^keygate_token_cache_hits_total / { print $2 }' <<<"$metrics")
misses=$(awk '/^keygate_token_cache_misses_total / { print $2 }' <<<"$metrics")

# --- report -------------------------------------------------------------------------


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
for name in hello hello+rsa healthz repeated distinct uncached clerk-rs; do
    printf '%-9s %8s %9s %9s %9s %10s %9s %9s %7s %5s%% %5s%% %5s%%\n' "$name" \
        "${rps[$name]}" "$(ratio "${rps[$name]}" "${rps[healthz]}")" \
        "${eff[$name]}" "$(ratio "${eff[$name]}" "${eff[healthz]}")" "${cpu_us[$name]}" \
        "${p50[$name]}" "${p99[$name]}" "${bad[$name]}" "${srv[$name]}" "${gen[$name]}" "${rest[$name]}"
done
echo "keygate (cached) peak RSS (VmHWM): $((hwm_kib / 1024)) MiB ($hwm_kib KiB); VmRSS now $((rss_kib / 1024)) MiB"
echo "token cache of the cached keygate: ${hits:-?} hits, ${misses:-?} misses ($CACHED distinct tokens, TOKEN_CACHE_SIZE=10000)"

echo
echo "targets (requests/s; req/cpu-s analogue in brackets):"
awk -v h="${rps[healthz]}" -v w="${rps[hello]}" -v he="${eff[healthz]}" -v we="${eff[hello]}" 'BEGIN {
    printf "  /healthz >= 0.85 x the hello world: %.3f (%s) [%.3f]\n", h / w, h / w >= 0.85 ? "met" : "missed", he / we }'
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
awk -v u="${rps[uncached]}" -v c="${rps[clerk-rs]}" -v ue="${eff[uncached]}" -v ce="${eff[clerk-rs]}" 'BEGIN {
    printf "  uncached /protected >= 1.1 x clerk-rs, the same %s distinct tokens: %.3f (%s) [%.3f]\n",
        "'"$TOKENS"'", u / c, u / c >= 1.1 ? "met" : "missed", ue / ce }'
awk -v k="$hwm_kib" 'BEGIN { printf "  peak RSS <= 64 MiB: %.1f MiB (%s)\n", k / 1024, k <= 65536 ? "met" : "missed" }'

[[ -z $perf_pid ]] || perf_summary "$target/load-perf.data" "the uncached keygate"

((failed == 0)) || die "some requests did not succeed"
