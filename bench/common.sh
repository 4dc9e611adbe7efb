# Shared by the load scripts (sourced, not run): temporary work directory and process
# cleanup, tools, an RS256 JWKS with minted tokens, the wrk script and one measured run.
#
# A script sets its knobs, sources this file, calls `setup_tools`, `mint_tokens COUNT`
# and `serve_jwks`, starts its servers with `track PID` so they are stopped on exit,
# then calls `run` once per scenario and reads the result arrays.

CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
PIPELINE=${PIPELINE:-1}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/keygate-load.XXXXXX")
tracked=()
clk=$(getconf CLK_TCK)
cpus=$(nproc)
failed=0

track() { tracked+=("$1"); }

cleanup() {
    local pid
    for pid in "${tracked[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Builds keygate and the hello example (release); sets $keygate and $hello.
build_binaries() {
    say "building keygate and the hello example (release)"
    (cd "$root" && cargo build --release --bin keygate --example hello)
    keygate=$target/release/keygate
    hello=$target/release/examples/hello
    [[ -x $keygate ]] || die "no binary at $keygate"
    [[ -x $hello ]] || die "no binary at $hello"
}

# User+system CPU ticks of processes and their direct children (nginx's workers).
cpu_ticks() {
    local pid total=0 t
    for pid in "$@"; do
        for p in "$pid" $(pgrep -P "$pid" || true); do
            t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
            total=$((total + t))
        done
    done
    echo "$total"
}
# Busy and total ticks of the whole machine.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

apt_install() { # apt_install PACKAGE: installs a Debian package when allowed to
    local sudo=
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y "$1" >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y "$1" >/dev/null; } ||
        die "could not install $1 (apt-get install $1)"
}

# Checks curl and python3, installs wrk, and sets $python to one with `cryptography`.
setup_tools() {
    local tool
    for tool in curl python3; do
        command -v "$tool" >/dev/null || die "$tool is required"
    done
    if ! command -v wrk >/dev/null; then
        say "installing wrk"
        apt_install wrk
    fi
    python=python3
    if ! python3 -c 'import cryptography' 2>/dev/null; then
        local venv=$target/bench-venv
        if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import cryptography' 2>/dev/null; then
            say "installing cryptography into $venv"
            python3 -m venv "$venv"
            "$venv/bin/pip" install --quiet cryptography
        fi
        python=$venv/bin/python
    fi
    write_wrk_script
}

# mint_tokens COUNT: an RSA key as $work/jwks/jwks.json (kid "bench"), COUNT distinct
# RS256 tokens of issuer https://issuer.bench in $work/tokens.txt, the first also in
# $work/one-token.txt.
mint_tokens() {
    local count=$1
    say "minting $count RS256 tokens"
    mkdir -p "$work/jwks"
    timeout 600 "$python" - "$work" "$count" <<'PY'
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
    [[ $(wc -l <"$work/tokens.txt") -eq $count ]] || die "minted the wrong number of tokens"
}

# Serves $work/jwks on a free port, the JWKS also as `/jwks` (the Backend API path
# clerk-rs fetches, as JSON); sets $jwks_url and $jwks_base.
serve_jwks() {
    local port
    port=$(free_port)
    ln -sf jwks.json "$work/jwks/jwks"
    python3 - "$port" "$work/jwks" >"$work/jwks.log" 2>&1 <<'PY' &
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    # clerk-rs refuses a JWKS that is not served as JSON.
    extensions_map = {"": "application/json", ".json": "application/json"}
handler = functools.partial(Handler, directory=sys.argv[2])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
PY
    track $!
    jwks_base=http://127.0.0.1:$port
    jwks_url=$jwks_base/jwks.json
    wait_ok "$jwks_url" 10 || die "the JWKS server did not start"
}

# wrk: every request is prepared once in init(), so each scenario costs the load
# generator the same per request; done() prints one machine-readable line.
write_wrk_script() {
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
}

# Sum of a keygate's served requests that were not 2xx, from its /metrics.
non_2xx_served() { # non_2xx_served BASE (or - for a server without keygate's metrics)
    [[ $1 == - ]] && { echo 0; return; }
    curl -fsS --max-time 5 "$1/metrics" |
        awk '/^keygate_http_request_duration_seconds_count\{/ && !/status="2/ { n += $NF } END { print n + 0 }'
}

# Results of `run`, by scenario name.
declare -A rps eff cpu_us p50 p99 bad srv gen rest split

# run NAME URL TOKENS_FILE|- METRICS_BASE|- LABEL=PID...
#   Drives URL with wrk ($CONNECTIONS connections, ${DURATION}s, $PIPELINE requests per
#   write, one thread pinned to $wrk_cpus when set). CPU per request and the server
#   share count every LABEL=PID process (and its children); `split` names each one's
#   share. $wrk_script replaces the wrk script when set. Any non-2xx (wrk's status errors plus METRICS_BASE's non-2xx) or socket
#   error marks the script failed.
run() {
    local name=$1 url=$2 tokens=$3 metrics=$4
    shift 4
    local labels=() pids=() pair
    for pair in "$@"; do
        labels+=("${pair%%=*}")
        pids+=("${pair#*=}")
    done
    local path=/${url#http://*/}
    local before_bad after_bad s0 s1 m0 m1 line real user sys i
    local -a each0 each1
    say "$name: $CONNECTIONS connections, ${DURATION}s, $url"
    before_bad=$(non_2xx_served "$metrics")
    for i in "${!pids[@]}"; do each0[i]=$(cpu_ticks "${pids[i]}"); done
    s0=$(cpu_ticks "${pids[@]}")
    m0=$(machine_ticks)
    local TIMEFORMAT='%R %U %S'
    local wrk_cmd=(timeout $((DURATION + 30)) wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s
        -s "${wrk_script:-$work/cycle.lua}" "$url" -- "$path" "$tokens" "$PIPELINE")
    [[ -z ${wrk_cpus:-} ]] || wrk_cmd=(taskset -c "$wrk_cpus" "${wrk_cmd[@]}")
    { time "${wrk_cmd[@]}" >"$work/$name.out"; } 2>"$work/$name.time"
    s1=$(cpu_ticks "${pids[@]}")
    for i in "${!pids[@]}"; do each1[i]=$(cpu_ticks "${pids[i]}"); done
    m1=$(machine_ticks)
    after_bad=$(non_2xx_served "$metrics")
    line=$(grep '^RESULT ' "$work/$name.out") || die "$name: no result from wrk: $(cat "$work/$name.out")"
    read -r real user sys <"$work/$name.time"
    local w_requests w_duration_us w_p50_us w_p99_us w_status w_connect w_read w_write w_timeout
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
    split[$name]=
    for i in "${!pids[@]}"; do
        split[$name]+=$(awk -v l="${labels[i]}" -v t="$((each1[i] - each0[i]))" -v c="$clk" -v r="$real" \
            'BEGIN { printf "%s %.0f%% ", l, t / c / r * 100 }')
    done
    split[$name]+="wrk ${gen[$name]}% other ${rest[$name]}%"
    if ((bad[$name] != 0)); then
        failed=1
        printf '%s: %s: %d non-2xx responses or socket errors (wrk: status %d, connect %d, read %d, write %d, timeout %d; server non-2xx %d)\n' \
            "$(basename "$0")" "$name" "${bad[$name]}" "$w_status" "$w_connect" "$w_read" "$w_write" "$w_timeout" "$((after_bad - before_bad))" >&2
    fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

machine_line() {
    echo "$CONNECTIONS connections, pipeline depth $PIPELINE, ${DURATION}s per run, $cpus CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
}

# start_keygate NAME [VAR=VALUE...]: starts $keygate serve (on $server_cpus when set)
# with the bench JWKS, issuer and a SQLite database of its own plus the given
# variables; waits for /readyz; sets started_pid and started_base.
start_keygate() {
    local name=$1 port
    shift
    port=$(free_port)
    started_base=http://127.0.0.1:$port
    say "starting keygate ($name${*:+, $*}) on $started_base${server_cpus:+ (CPUs $server_cpus)}"
    mkdir -p "$work/$name"
    local cmd=("$keygate" serve)
    [[ -z ${server_cpus:-} ]] || cmd=(taskset -c "$server_cpus" "${cmd[@]}")
    (
        cd "$work/$name"
        exec env -i PATH="$PATH" HOME="$HOME" \
            BIND_ADDR="127.0.0.1:$port" \
            JWKS_URL="$jwks_url" \
            JWT_ISSUER="https://issuer.bench" \
            DATABASE_URL="sqlite://$work/$name/bench.db?mode=rwc" \
            RUST_LOG=warn \
            "$@" \
            "${cmd[@]}"
    ) >"$work/$name.log" 2>&1 &
    started_pid=$!
    track "$started_pid"
    local ready=$started_base/readyz
    [[ " $* " != *" UPSTREAM_URL="* ]] || ready=$started_base/_keygate/readyz
    if ! wait_ok "$ready" 30; then
        cat "$work/$name.log" >&2
        die "keygate ($name) did not become ready"
    fi
}

# expect_status STATUS URL [CURL ARGS...]: dies unless URL answers STATUS.
expect_status() {
    local want=$1 url=$2 status
    shift 2
    status=$(curl -sS -o /dev/null -w '%{http_code}' "$@" "$url")
    [[ $status == "$want" ]] || die "$url answered $status, not $want"
}

# perf_summary DATA WHAT: the top symbols of a `perf record` and its self time by crate.
perf_summary() {
    local data=$1 what=$2
    echo
    echo "where $what's CPU went (perf, self time, top 30 symbols; data in $data):"
    perf report -i "$data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        awk '/^ +[0-9.]+%/ && n < 30 { n++; line = $0; sub(/ +- +- *$/, "", line); print substr(line, 1, 110) }'
    echo
    echo "by crate or library (self time):"
    perf report -i "$data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        awk '/^ +[0-9.]+%/ { pct = $1; sub("%", "", pct); sym = $0;
             c = "other";
             if (sym ~ /aws_lc|bn_|sha256|RSA_|rsa_/) c = "aws-lc (crypto)";
             else if (sym ~ /keygate/) c = "keygate";
             else if (sym ~ /serde_json|serde/) c = "serde/serde_json";
             else if (sym ~ /awc::|actix_http::client|h1::client/) c = "awc (upstream client)";
             else if (sym ~ /actix|h1::|http::/) c = "actix-web/actix-http";
             else if (sym ~ /sqlite|sqlx/) c = "sqlx/sqlite (user writes)";
             else if (sym ~ /prometheus/) c = "prometheus";
             else if (sym ~ /quick_cache/) c = "quick_cache";
             else if (sym ~ /tracing|sharded_slab/) c = "tracing";
             else if (sym ~ /tokio|mio::/) c = "tokio/mio";
             else if (sym ~ /malloc|free|memmove|memcpy|memset|memcmp/) c = "allocator, mem*";
             else if (sym ~ /kernel|\[k\]/) c = "kernel";
             total[c] += pct }
             END { for (c in total) printf "  %6.2f%%  %s\n", total[c], c }' | sort -rn
}
