#!/usr/bin/env bash
# User-space instructions per request of keygate's hot paths, counted by callgrind.
#
# Timings on a small shared machine move by 20 % from one run to the next; instruction
# counts do not, so this is how two builds are compared. Each scenario starts keygate
# (one worker) under `valgrind --tool=callgrind`, warms it with wrk, zeroes the
# counters, drives it with wrk for DURATION seconds, dumps, and divides the
# instructions counted by the requests served:
#   hello     GET / of the hello world (examples/hello.rs), the HTTP ceiling: measured
#             once, whatever KEYGATE says, so that /healthz's gap to it reads per request
#   healthz   GET /healthz (forward-auth mode, no UPSTREAM_URL)
#   auth      GET /auth with one repeated RS256 token, X-Original-URI: /api/hello
#   proxy     GET / through the reverse proxy to the hello world, the same token
#   uncached  GET /protected on TOKEN_CACHE_SIZE=0, cycling through TOKENS distinct
#             tokens: every request verifies a signature (not in the default set)
#   clerk-rs  the same tokens against bench/clerk-rs, the app guarded by the published
#             clerk-rs crate (built on first use; measured once; not in the default set)
# Only the measured server's own process is counted; kernel time is not (see
# bench/gateway.sh for that). Instructions are not cycles: callgrind counts a `rep stos`
# memset by bytes, so the figures overstate actix-http's header-array clearing (about
# 6 000 per parsed message) against what a CPU spends on it. Compare builds, not paths.
#
# Knobs (environment): KEYGATE (binaries to measure, space-separated; default the
# release build of this tree), SCENARIOS (default "hello healthz auth proxy"), DURATION
# seconds (6), CONNECTIONS (8), TOKENS (distinct tokens of uncached and clerk-rs, 500: few
# enough that the warm-up writes every user row, which the counted run then does not),
# CALLGRIND_DIR (keep each counted dump there as <n>-<scenario>.out, for
# `callgrind_annotate --inclusive=yes`).
set -euo pipefail

DURATION=${DURATION:-6}
CONNECTIONS=${CONNECTIONS:-8}
SCENARIOS=${SCENARIOS:-hello healthz auth proxy}
TOKENS=${TOKENS:-500}
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_binaries
read -ra binaries <<<"${KEYGATE:-$keygate}"
command -v valgrind >/dev/null || { say "installing valgrind"; apt_install valgrind; }
setup_tools
if [[ " $SCENARIOS " == *" uncached "* || " $SCENARIOS " == *" clerk-rs "* ]]; then
    mint_tokens "$TOKENS"
else
    mint_tokens 1
fi
if [[ " $SCENARIOS " == *" clerk-rs "* ]]; then
    say "building the clerk-rs comparison (release)"
    cargo build --release --locked --manifest-path "$root/bench/clerk-rs/Cargo.toml" --target-dir "$target/clerk-rs"
    clerk=$target/clerk-rs/release/clerk-rs-bench
fi
serve_jwks
token_file=$work/one-token.txt
sed 's|{ Authorization = "Bearer " .. token }|{ Authorization = "Bearer " .. token, ["X-Original-URI"] = "/api/hello" }|' \
    "$work/cycle.lua" >"$work/cycle-auth.lua"

hello_port=$(free_port)
HELLO_ADDR="127.0.0.1:$hello_port" WORKERS=1 "$hello" >"$work/hello.log" 2>&1 &
track $!
wait_ok "http://127.0.0.1:$hello_port/" 30 || die "the upstream did not start"

# count BINARY SCENARIO: sets $served (requests) and $instructions (counted meanwhile).
count() {
    local binary=$1 scenario=$2 port dir pid url ready script tokens extra=()
    port=$(free_port)
    dir=$work/$scenario-$RANDOM
    mkdir -p "$dir"
    url=http://127.0.0.1:$port
    ready=$url/readyz script=$work/cycle.lua tokens=$token_file
    local command=("$binary" serve)
    case $scenario in
    hello) ready=$url/ url=$url/ tokens=- command=("$hello") extra=(HELLO_ADDR="127.0.0.1:$port") ;;
    healthz) url=$url/healthz tokens=- ;;
    auth) url=$url/auth script=$work/cycle-auth.lua ;;
    protected) url=$url/protected ;;
    proxy) url=$url/ ready=http://127.0.0.1:$port/_keygate/readyz extra=(UPSTREAM_URL="http://127.0.0.1:$hello_port") ;;
    uncached) url=$url/protected tokens=$work/tokens.txt extra=(TOKEN_CACHE_SIZE=0) ;;
    clerk-rs)
        url=$url/protected ready=- tokens=$work/tokens.txt command=("$clerk")
        extra=(CLERK_ADDR="127.0.0.1:$port" CLERK_API_URL="$jwks_base")
        ;;
    *) die "unknown scenario $scenario" ;;
    esac
    (
        cd "$dir"
        exec env -i PATH="$PATH" HOME="$HOME" BIND_ADDR="127.0.0.1:$port" JWKS_URL="$jwks_url" \
            JWT_ISSUER="https://issuer.bench" DATABASE_URL="sqlite://$dir/bench.db?mode=rwc" \
            RUST_LOG=warn WORKERS=1 "${extra[@]}" \
            valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "${command[@]}"
    ) >"$dir/log" 2>&1 &
    pid=$!
    track "$pid"
    if [[ $ready == - ]]; then
        # clerk-rs has no readiness route: its first authenticated answer fetches the keys.
        local deadline=$((SECONDS + 120))
        until curl -fsS -o /dev/null --max-time 5 -H "Authorization: Bearer $(cat "$token_file")" "$url" 2>/dev/null; do
            ((SECONDS < deadline)) || die "$scenario under callgrind did not answer: $(tail -5 "$dir/log")"
            sleep 0.5
        done
    else
        wait_ok "$ready" 120 || die "$scenario under callgrind did not become ready: $(tail -5 "$dir/log")"
    fi
    local path=/${url#http://*/}
    wrk -t1 -c"$CONNECTIONS" -d2s -s "$script" "$url" -- "$path" "$tokens" 1 >/dev/null
    callgrind_control --zero "$pid" >/dev/null 2>&1
    served=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$script" "$url" -- "$path" "$tokens" 1 |
        sed -nE 's/^RESULT requests=([0-9]+) .*/\1/p')
    callgrind_control --dump "$pid" >/dev/null 2>&1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # The dump after zeroing is callgrind.out.1; callgrind.out holds what followed it.
    instructions=$(grep -h '^summary:' "$dir/callgrind.out.1" | awk '{ s += $2 } END { print s + 0 }')
    if [[ -n ${CALLGRIND_DIR:-} ]]; then
        mkdir -p "$CALLGRIND_DIR"
        kept=$((kept + 1))
        cp "$dir/callgrind.out.1" "$CALLGRIND_DIR/$kept-$scenario.out"
    fi
    [[ -n $served && $served -gt 0 ]] || die "$scenario: wrk served nothing"
}

echo
echo "keygate instructions per request (callgrind, one worker, $CONNECTIONS connections, ${DURATION}s per scenario)"
printf '%-40s %-8s %9s %12s\n' binary scenario requests 'Ir/request'
declare -A measured
kept=0
for binary in "${binaries[@]}"; do
    for scenario in $SCENARIOS; do
        shown=$binary
        case $scenario in
        hello | clerk-rs)
            # Not keygate: the same for every binary.
            [[ -z ${measured[$scenario]:-} ]] || continue
            measured[$scenario]=1
            shown=$scenario
            ;;
        esac
        count "$binary" "$scenario"
        printf '%-40s %-8s %9s %12s\n' "$shown" "$scenario" "$served" \
            "$(awk -v i="$instructions" -v n="$served" 'BEGIN { printf "%.0f", i / n }')"
    done
done
