#!/usr/bin/env bash
# Revocation benchmark: two keygate replicas, A and B, on one fresh PostgreSQL database.
#
# Builds keygate in release mode, creates a database on the server of TEST_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test; dropped again on exit) and starts A
# (with the Clerk webhook) and B on it, HS256 tokens (JWT_SECRET). Then measures:
#
#   1. poll cost: with $SMALL and then $LARGE rows in revoked_sessions (and as many ids
#      in B's set), $POLLS notifications are sent, one per transaction, each waking
#      one incremental poll on B; the mean of keygate_revocation_poll_duration_seconds
#      over those polls (B's own measurement of its real poll), and the ratio of the
#      two sizes against the 2x target.
#   2. propagation, after each poll-cost run: for each of $REVOCATIONS sessions, B
#      first answers 200 to a token of it; then a Svix-signed session.revoked is sent
#      to A's webhook and B is polled as fast as one client can until it answers 401;
#      the time from sending the webhook to that 401. p50/p99 against the 250 ms
#      target (SPEC §12).
#
# The filler rows are inserted with SQL in one transaction (sessions no token uses).
#
# Knobs (environment): REVOCATIONS (100, at least 50), SMALL (100), LARGE (100000),
# POLLS (200), WORKERS (1 per replica), TEST_DATABASE_URL. Needs psql, curl and
# python3 (standard library only). Only loopback addresses are used.
set -euo pipefail

REVOCATIONS=${REVOCATIONS:-100}
SMALL=${SMALL:-100}
LARGE=${LARGE:-100000}
POLLS=${POLLS:-200}
WORKERS=${WORKERS:-1}
ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/keygate-revocations.XXXXXX")
a_pid=
b_pid=
database=

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cleanup() {
    local pid
    for pid in $a_pid $b_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $database ]]; then
        psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

((REVOCATIONS >= 50)) || die "REVOCATIONS must be at least 50"
((LARGE >= SMALL + REVOCATIONS)) || die "LARGE must be at least SMALL + REVOCATIONS"
for tool in curl psql python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# `url` with its database name replaced (query kept).
with_database() {
    python3 - "$1" "$2" <<'PY'
import sys
url, name = sys.argv[1], sys.argv[2]
base, _, query = url.partition("?")
scheme, _, rest = base.partition("://")
authority = rest.split("/", 1)[0]
print(f"{scheme}://{authority}/{name}" + (f"?{query}" if query else ""))
PY
}

sql() { psql -qtAX -v ON_ERROR_STOP=1 "$db_url" "$@"; }

# --- build, database, replicas ------------------------------------------------------

say "building keygate (release)"
(cd "$root" && cargo build --release --bin keygate)
keygate=$target/release/keygate
[[ -x $keygate ]] || die "no binary at $keygate"

database=kg_bench_$(python3 -c 'import secrets; print(secrets.token_hex(6))')
psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "CREATE DATABASE $database" >/dev/null ||
    die "cannot create a database with $ADMIN_URL"
db_url=$(with_database "$ADMIN_URL" "$database")

jwt_secret=bench-secret-of-at-least-thirty-two-bytes
signing_key=keygate-bench-webhook-signing-key
webhook_secret=whsec_$(printf '%s' "$signing_key" | base64 -w0)

# start_replica NAME [VAR=VALUE...]: starts a keygate; prints its base URL.
start_replica() {
    local name=$1 port
    shift
    port=$(free_port)
    mkdir -p "$work/$name"
    (
        cd "$work/$name"
        exec env -i PATH="$PATH" HOME="$HOME" \
            BIND_ADDR="127.0.0.1:$port" \
            WORKERS="$WORKERS" \
            JWT_SECRET="$jwt_secret" \
            DATABASE_URL="$db_url" \
            RUST_LOG=warn \
            "$@" "$keygate" serve
    ) >"$work/$name.log" 2>&1 &
    started_pid=$!
    started_base=http://127.0.0.1:$port
    wait_ok "$started_base/readyz" 30 || { cat "$work/$name.log" >&2; die "keygate $name did not become ready"; }
}

start_replica a CLERK_WEBHOOK_SECRET="$webhook_secret"
a_pid=$started_pid a_base=$started_base
start_replica b
b_pid=$started_pid b_base=$started_base
say "A on $a_base (webhook), B on $b_base, database $database"

# Waits until B's metric $1 reaches at least $2.
wait_metric() {
    local deadline=$((SECONDS + 120)) value
    while :; do
        value=$(curl -fsS "$b_base/metrics" | awk -v m="$1" '$1 == m { print $2 }')
        python3 -c "import sys; sys.exit(0 if float('${value:-0}') >= $2 else 1)" && return 0
        ((SECONDS < deadline)) || die "B's $1 never reached $2 (last ${value:-none})"
        sleep 0.2
    done
}
wait_metric keygate_revocation_listener_up 1

# Fills revoked_sessions up to $1 rows with sessions no token uses (one transaction,
# then a notification so the replicas catch up) and waits until B holds them.
fill_to() {
    local rows
    rows=$(sql -c "SELECT COUNT(*) FROM revoked_sessions")
    if ((rows < $1)); then
        say "filling revoked_sessions from $rows to $1 rows"
        sql <<SQL
INSERT INTO revoked_sessions (session_id, revoked_at, expires_at)
    SELECT 'sess_fill_' || g, extract(epoch FROM now())::bigint, extract(epoch FROM now())::bigint + 86400
    FROM generate_series($rows + 1, $1) AS g;
NOTIFY keygate_revocations;
SQL
    fi
    wait_metric keygate_revoked_sessions "$1"
}

# --- the measurements -------------------------------------------------------------

# propagation LABEL OFFSET: $REVOCATIONS revocations of fresh sessions.
propagation() {
    timeout 600 python3 - "$a_base" "$b_base" "$jwt_secret" "$signing_key" "$REVOCATIONS" "$1" "$2" <<'PY'
import base64, hashlib, hmac, http.client, json, math, sys, time, urllib.parse

a_base, b_base, secret, signing_key, count, label, offset = sys.argv[1:8]
count, offset = int(count), int(offset)

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def token(sid):
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"sub": f"user_{sid}", "sid": sid, "iat": now, "nbf": now, "exp": now + 3600}).encode())
    signing_input = f"{header}.{claims}".encode()
    signature = b64(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return f"{header}.{claims}.{signature}"

def connection(base):
    url = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10)

a, b = connection(a_base), connection(b_base)

def get_b(tok):
    b.request("GET", "/protected", headers={"Authorization": f"Bearer {tok}"})
    reply = b.getresponse()
    reply.read()
    return reply.status

key = signing_key.encode()
times = []
for n in range(count):
    sid = f"sess_bench_{offset + n}"
    tok = token(sid)
    status = get_b(tok)
    if status != 200:
        sys.exit(f"B answered {status} for {sid} before its revocation")
    now = int(time.time())
    body = json.dumps({"type": "session.revoked", "object": "event",
                       "data": {"id": sid, "object": "session", "status": "revoked",
                                "user_id": f"user_{sid}", "expire_at": (now + 86400) * 1000}}).encode()
    msg = f"msg_{sid}"
    mac = hmac.new(key, f"{msg}.{now}.".encode() + body, hashlib.sha256).digest()
    headers = {"svix-id": msg, "svix-timestamp": str(now),
               "svix-signature": "v1," + base64.b64encode(mac).decode(),
               "content-type": "application/json"}
    started = time.perf_counter()
    a.request("POST", "/webhooks/clerk", body=body, headers=headers)
    reply = a.getresponse()
    reply.read()
    if reply.status != 204:
        sys.exit(f"A answered {reply.status} to the webhook of {sid}")
    while True:
        status = get_b(tok)
        if status == 401:
            break
        if status != 200:
            sys.exit(f"B answered {status} for {sid}")
        if time.perf_counter() - started > 10:
            sys.exit(f"B still accepts {sid} 10 s after the webhook")
    times.append((time.perf_counter() - started) * 1000)
    time.sleep(0.02)  # each revocation on its own, not coalesced with the previous

times.sort()
def pct(p):  # nearest rank
    return times[max(0, math.ceil(p / 100 * len(times)) - 1)]
p50, p99 = pct(50), pct(99)
verdict = "met" if p99 <= 250 else "NOT met"
print(f"propagation A webhook -> B 401 ({label}): {count} revocations, "
      f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, min {times[0]:.1f} ms, max {times[-1]:.1f} ms "
      f"(target p99 <= 250 ms: {verdict})")
PY
}

# B's poll histogram: "sum count".
poll_totals() {
    curl -fsS "$b_base/metrics" | awk '
        $1 == "keygate_revocation_poll_duration_seconds_sum" { s = $2 }
        $1 == "keygate_revocation_poll_duration_seconds_count" { c = $2 }
        END { print s, c }'
}

# poll_cost LABEL: prints the mean poll duration in microseconds (and a line on stderr).
poll_cost() {
    local before after script=$work/notify.sql
    : >"$script"
    for _ in $(seq "$POLLS"); do
        printf 'NOTIFY keygate_revocations;\nSELECT pg_sleep(0.01);\n' >>"$script"
    done
    read -r sum0 count0 < <(poll_totals)
    sql -f "$script" >/dev/null
    sleep 0.5 # the last notification's poll
    read -r sum1 count1 < <(poll_totals)
    python3 - "$1" "$sum0" "$count0" "$sum1" "$count1" <<'PY'
import sys
label, s0, c0, s1, c1 = sys.argv[1], *map(float, sys.argv[2:])
polls = c1 - c0
if polls < 1:
    sys.exit(f"no poll ran during the {label} measurement")
mean = (s1 - s0) / polls * 1e6
print(f"poll cost ({label}): {int(polls)} polls, mean {mean:.0f} us", file=sys.stderr)
print(f"{mean:.3f}")
PY
}

echo "keygate revocation benchmark: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(psql -qtAX "$ADMIN_URL" -c 'SHOW server_version'), WORKERS=$WORKERS per replica"

fill_to "$SMALL"
small=$(poll_cost "$SMALL rows")
say "propagation with $SMALL revoked sessions and more"
propagation "table from $SMALL rows" 0

fill_to "$LARGE"
large=$(poll_cost "$LARGE rows")
say "propagation with $LARGE revoked sessions and more"
propagation "table from $LARGE rows" "$REVOCATIONS"

python3 - "$SMALL" "$small" "$LARGE" "$large" <<'PY'
import sys
small_rows, small, large_rows, large = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
ratio = large / small
verdict = "met" if ratio <= 2 else "NOT met"
print(f"incremental poll: {small:.0f} us with {small_rows} rows, {large:.0f} us with {large_rows} rows, "
      f"ratio {ratio:.2f} (target <= 2: {verdict})")
PY
