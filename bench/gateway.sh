#!/usr/bin/env bash
# Load test of keygate's gateway over loopback, against a local JWKS.
#
# Builds keygate and the `hello` example (an Actix-web hello world, the minimal
# upstream) in release mode and drives, with wrk and one repeated RS256 token, in one
# run of the machine:
#   1. healthz     GET /healthz of keygate in forward-auth mode (no UPSTREAM_URL)
#   2. auth        GET /auth of the same keygate, X-Original-URI: /api/hello
#   3. upstream    GET / of the upstream directly (no authentication)
#   4. proxy       GET / through keygate with UPSTREAM_URL set to the upstream
#   4b. proxy-identity  the same with GATEWAY_IDENTITY_TOKEN=true (X-Auth-Identity
#                  signed once for the repeated token, then kept with it)
#   5. nginx       GET / through nginx doing auth_request to keygate's /auth and
#                  proxy_pass to the upstream, both over kept-alive connections (the
#                  setup a user would otherwise build)
#   6. nginx-pass  GET / through nginx doing only proxy_pass to the upstream, without
#                  authentication: what a bare reverse proxy costs on this machine, the
#                  reference for the proxy-to-upstream ratio
# and prints requests/s, CPU per request of the serving processes, p50, p99, non-2xx
# and the CPU split between keygate, the upstream, nginx and wrk. Any non-2xx
# response or socket error fails the script. Every server runs one worker (WORKERS=1,
# worker_processes 1) and nothing is pinned: on a small machine the servers and the
# load generator share the cores, so read the ratios, which come from one run.
#
# Knobs (environment): CONNECTIONS (64), DURATION seconds (10), PIPELINE (1), ROUNDS
# (1: each round runs every scenario once, in order; results are summed over rounds),
# PROFILE (0; 1 or proxy: sample the proxying keygate with `perf record` during its
# last run and print where its CPU time goes; auth: the same for the /auth run).
set -euo pipefail

ROUNDS=${ROUNDS:-1}
PROFILE=${PROFILE:-0}
# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_binaries

setup_tools
nginx=$(command -v nginx || echo /usr/sbin/nginx)
if [[ ! -x $nginx ]]; then
    say "installing nginx"
    # The package's own service is not wanted: only the binary is.
    [[ -e /usr/sbin/policy-rc.d ]] || printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d 2>/dev/null &&
        chmod +x /usr/sbin/policy-rc.d 2>/dev/null || true
    apt_install nginx-light || apt_install nginx
    nginx=/usr/sbin/nginx
fi
mint_tokens 1
serve_jwks
token=$(cat "$work/one-token.txt")

# --- servers -----------------------------------------------------------------------

hello_port=$(free_port)
upstream_base=http://127.0.0.1:$hello_port
say "starting the upstream (hello world) on $upstream_base"
HELLO_ADDR="127.0.0.1:$hello_port" WORKERS=1 "$hello" >"$work/hello.log" 2>&1 &
upstream_pid=$!
track "$upstream_pid"
wait_ok "$upstream_base/" 30 || die "the upstream did not start"

start_keygate forward WORKERS=1
forward_pid=$started_pid
forward_base=$started_base
expect_status 200 "$forward_base/auth" -H "Authorization: Bearer $token" -H "X-Original-URI: /api/hello"
expect_status 401 "$forward_base/auth" -H "X-Original-URI: /api/hello"

start_keygate proxy WORKERS=1 UPSTREAM_URL="$upstream_base"
proxy_pid=$started_pid
proxy_base=$started_base
expect_status 200 "$proxy_base/" -H "Authorization: Bearer $token"
expect_status 401 "$proxy_base/"

start_keygate proxy-identity WORKERS=1 UPSTREAM_URL="$upstream_base" GATEWAY_IDENTITY_TOKEN=true
identity_pid=$started_pid
identity_base=$started_base
expect_status 200 "$identity_base/" -H "Authorization: Bearer $token"
curl -fsS "$identity_base/_keygate/.well-known/jwks.json" | grep -q '"kid"' ||
    die "the identity keygate publishes no JWKS"

nginx_port=$(free_port)
nginx_base=http://127.0.0.1:$nginx_port
pass_port=$(free_port)
pass_base=http://127.0.0.1:$pass_port
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

    upstream keygate { server ${forward_base#http://}; keepalive $CONNECTIONS; }
    upstream app { server ${upstream_base#http://}; keepalive $CONNECTIONS; }

    server {
        listen 127.0.0.1:$nginx_port;
        keepalive_requests 1000000;
        location / {
            auth_request /_keygate_auth;
            auth_request_set \$auth_user_id \$upstream_http_x_auth_user_id;
            proxy_set_header X-Auth-User-Id \$auth_user_id;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
        location = /_keygate_auth {
            internal;
            proxy_pass http://keygate/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Original-Method \$request_method;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }

    server {
        listen 127.0.0.1:$pass_port;
        keepalive_requests 1000000;
        location / {
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
}
NGINX
say "starting nginx on $nginx_base"
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
nginx_pid=$!
track "$nginx_pid"
deadline=$((SECONDS + 10))
until [[ $(curl -sS -o /dev/null -w '%{http_code}' "$nginx_base/" 2>/dev/null) == 401 ]]; do
    ((SECONDS < deadline)) || die "nginx did not start: $(cat "$work/nginx/error.log" "$work/nginx.log" 2>/dev/null)"
    sleep 0.2
done
expect_status 200 "$nginx_base/" -H "Authorization: Bearer $token"

# wrk's script sends the token as a bearer header; /auth also needs the original URI,
# so that scenario gets a variant of the script with the header added.
sed 's|{ Authorization = "Bearer " .. token }|{ Authorization = "Bearer " .. token, ["X-Original-URI"] = "/api/hello" }|' \
    "$work/cycle.lua" >"$work/cycle-auth.lua"
grep -q X-Original-URI "$work/cycle-auth.lua" || die "could not derive the /auth wrk script"

# --- runs ---------------------------------------------------------------------------

[[ $PROFILE == 1 ]] && PROFILE=proxy
case $PROFILE in
0) ;;
proxy | auth) command -v perf >/dev/null || die "PROFILE needs perf (apt-get install linux-perf)" ;;
*) die "PROFILE is 0, 1, proxy or auth, not $PROFILE" ;;
esac

# profiled SCENARIO PID COMMAND...: runs COMMAND, sampled with perf when SCENARIO is the
# one PROFILE names and this is the last round.
profiled() {
    local scenario=$1 pid=$2 perf_pid=
    shift 2
    if [[ $PROFILE == "$scenario" ]] && ((round == ROUNDS)); then
        perf record -e cpu-clock -F 999 -g -p "$pid" -o "$target/gateway-perf.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    "$@"
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
}

scenarios=(healthz auth upstream proxy proxy-identity nginx nginx-pass)
one_round() {
    run healthz "$forward_base/healthz" - "$forward_base" keygate="$forward_pid"
    wrk_script=$work/cycle-auth.lua profiled auth "$forward_pid" \
        run auth "$forward_base/auth" "$work/one-token.txt" "$forward_base" keygate="$forward_pid"
    run upstream "$upstream_base/" - - upstream="$upstream_pid"
    profiled proxy "$proxy_pid" \
        run proxy "$proxy_base/" "$work/one-token.txt" "$proxy_base/_keygate" keygate="$proxy_pid" upstream="$upstream_pid"
    run proxy-identity "$identity_base/" "$work/one-token.txt" "$identity_base/_keygate" \
        keygate="$identity_pid" upstream="$upstream_pid"
    run nginx "$nginx_base/" "$work/one-token.txt" "$forward_base" \
        nginx="$nginx_pid" keygate="$forward_pid" upstream="$upstream_pid"
    run nginx-pass "$pass_base/" - - nginx="$nginx_pid" upstream="$upstream_pid"
}

declare -A round_rps
for ((round = 1; round <= ROUNDS; round++)); do
    one_round
    for name in "${scenarios[@]}"; do
        round_rps[$name]+="${rps[$name]} "
    done
done

# --- report -------------------------------------------------------------------------

mean() { awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", s / NF }' <<<"$1"; }
declare -A mrps
for name in "${scenarios[@]}"; do mrps[$name]=$(mean "${round_rps[$name]}"); done

echo
echo "keygate gateway load test: $(machine_line), $ROUNDS round(s)"
echo "req/s: mean over rounds. cpu us/req: CPU of the serving processes (listed in the"
echo "split) per request, last round. split: % of one core over the run, last round."
printf '%-14s %8s %10s %8s %8s %7s  %s\n' run req/s 'cpu us/req' 'p50 ms' 'p99 ms' non-2xx split
for name in "${scenarios[@]}"; do
    printf '%-14s %8s %10s %8s %8s %7s  %s\n' "$name" "${mrps[$name]}" "${cpu_us[$name]}" \
        "${p50[$name]}" "${p99[$name]}" "${bad[$name]}" "${split[$name]}"
done
[[ $ROUNDS == 1 ]] || for name in "${scenarios[@]}"; do echo "  $name per round: ${round_rps[$name]}"; done

echo
echo "targets (requests/s):"
awk -v a="${mrps[auth]}" -v h="${mrps[healthz]}" -v p="${mrps[proxy]}" -v n="${mrps[nginx]}" -v u="${mrps[upstream]}" -v b="${mrps[nginx-pass]}" -v i="${mrps[proxy-identity]}" '
    function verdict(x, bound) { return x >= bound ? "met" : "missed" }
    BEGIN {
        printf "  proxy with the signed identity >= 0.95 x proxy without: %.3f (%s)\n", i / p, verdict(i / p, 0.95)
        printf "  /auth repeated token >= 0.85 x /healthz: %.3f (%s)\n", a / h, verdict(a / h, 0.85)
        printf "  proxy >= 1.0 x nginx auth_request + proxy_pass: %.3f (%s)\n", p / n, verdict(p / n, 1.0)
        printf "  proxy >= 0.5 x the upstream directly: %.3f (%s)\n", p / u, verdict(p / u, 0.5)
        printf "    for reference, nginx proxy_pass alone (no authentication) reaches %.3f x the upstream directly\n", b / u
    }'
echo "targets (CPU per request of the serving processes, last round):"
awk -v p="${cpu_us[proxy]}" -v b="${cpu_us[nginx-pass]}" '
    BEGIN {
        r = p / b
        printf "  proxied request stack (keygate + upstream) <= 1.5 x nginx bare proxy_pass (nginx + upstream): %.3f (%s)\n", r, r <= 1.5 ? "met" : "missed"
    }'
if [[ $PROFILE != 0 ]]; then
    echo "  (perf sampled the $PROFILE run's keygate, which slows it: take ratios from a run without PROFILE)"
    perf_summary "$target/gateway-perf.data" "the $PROFILE run's keygate"
fi
if ((failed)); then
    echo "FAILED: non-2xx responses or socket errors (see above)" >&2
    exit 1
fi
