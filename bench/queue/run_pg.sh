#!/usr/bin/env bash
# The queue on PostgreSQL, side by side with the queue on SQLite, in one
# run on this machine: pickup (submit -> lease answer, a long-poll already
# held) on SQLite, on one PostgreSQL replica, and across two replicas
# (the poll held on one, the job submitted on the other); then idle
# long-polls spread over three replicas, with the replicas' memory and the
# CPU they use while nothing happens.
#
#   bash bench/queue/run_pg.sh [BUILD_DIR]
#   SKIFF_BENCH_JOBS=1000 SKIFF_BENCH_IDLE=10000 bash bench/queue/run_pg.sh
#
# SKIFF_BENCH_IDLE is the number of polls per replica (3 replicas). The
# PostgreSQL cluster is made here (initdb as the postgres user, in a
# temporary directory, 127.0.0.1 on a free port) with PostgreSQL's default
# durability (fsync on, synchronous_commit on), and removed at the end.
# Last, the log path (bench_queue_logs --postgres): the same four figures
# on PostgreSQL and on SQLite (--sync full) side by side; SKIFF_BENCH_LOGS
# picks them (abcd, "" for none), SKIFF_BENCH_SECONDS their window.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
jobs=${SKIFF_BENCH_JOBS:-1000}
idle=${SKIFF_BENCH_IDLE:-10000}
queue=$build/queue/skiff-queue
bq=$build/bench/queue
work=$(mktemp -d /tmp/skiff-benchpg.XXXXXX)
pids=()
ipids=()
initdbs=(/usr/lib/postgresql/*/bin/initdb)
bindir=$(dirname "${initdbs[-1]}")
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$work/pg" ]; then
    runuser -u postgres -- "$bindir/pg_ctl" -D "$work/pg" stop -m immediate \
      -w >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ulimit -n "$(ulimit -Hn)"
chown postgres "$work"
runuser -u postgres -- "$bindir/initdb" -D "$work/pg" -U skiff -A trust \
  --no-sync -E UTF8 --locale=C >/dev/null
runuser -u postgres -- "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $pgport -k $work -c max_connections=200" \
  start >/dev/null
"$bindir/psql" -X -q -h 127.0.0.1 -p "$pgport" -U skiff -d postgres \
  -c "CREATE DATABASE bench"
conninfo="host=127.0.0.1 port=$pgport user=skiff dbname=bench"

# Certificates and tokens: made once by a --dev queue, then shared.
"$queue" --dev --data-dir "$work/dev" --listen 127.0.0.1:0 \
  --port-file "$work/dev.port" --log-level warn >/dev/null 2>&1 &
devpid=$!
for _ in $(seq 100); do [ -s "$work/dev.port" ] && break; sleep 0.1; done
set -a
# shellcheck disable=SC1091
. "$work/dev/dev.env"
set +a
admin=$SKIFF_ADMIN_TOKEN
printf '%s\n' "$admin" >"$work/admin"
tls=(--tls-cert "$work/dev/tls/server.pem" --tls-key "$work/dev/tls/server-key.pem")

wait_port() { # file
  for _ in $(seq 150); do [ -s "$1" ] && return 0; sleep 0.1; done
  echo "bench: a queue did not start" >&2
  exit 1
}

replica() { # n [scheme]: starts replica n on PostgreSQL, sets url_n, pid_n
  local n=$1 scheme=${2:-https}
  local transport=("${tls[@]}")
  [ "$scheme" = http ] && transport=(--insecure-http)
  rm -f "$work/r$n.port"
  "$queue" --postgres "$conninfo" "${transport[@]}" --admin-token-file "$work/admin" \
    --listen 127.0.0.1:0 --port-file "$work/r$n.port" --max-lease-wait 60 \
    --max-connections-per-ip 0 \
    --log-level warn 2>"$work/r$n.log" &
  pids+=($!)
  eval "pid_$n=$!"
  wait_port "$work/r$n.port"
  eval "url_$n=$scheme://127.0.0.1:$(cat "$work/r$n.port")"
}

regtoken() { # url
  curl -sS --cacert "$SKIFF_CA_FILE" -H "Authorization: Bearer $admin" \
    -X POST -d '{"description":"bench"}' "$1/v1/pools/dev/tokens" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

echo "== pickup, $jobs jobs each: SQLite (the --dev queue, --sync full) vs PostgreSQL"
"$bq/bench_queue_pickup" "$jobs" | sed 's/^/sqlite            /'
kill "$devpid"; wait "$devpid" 2>/dev/null || true
replica 1
replica 2
replica 3
# shellcheck disable=SC2154
SKIFF_REGISTRATION_TOKEN=$(regtoken "$url_1")
export SKIFF_REGISTRATION_TOKEN
# shellcheck disable=SC2154
SKIFF_QUEUE_URL=$url_1 "$bq/bench_queue_pickup" "$jobs" |
  sed 's/^/postgres, 1 of 3 /'
# shellcheck disable=SC2154
SKIFF_QUEUE_URL=$url_2 "$bq/bench_queue_pickup" --submit-url "$url_1" "$jobs" |
  sed 's/^/postgres, across /'

echo "== idle long-polls: $idle on each of 3 replicas ($((3 * idle)) in all),"
echo "   plain HTTP (30,000 TLS handshakes from one generator on 2 vCPUs do"
echo "   not fit in the 60 s wait; what TLS adds per poll is in performance.md)"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
for n in 1 2 3; do replica "$n" http; done
for n in 1 2 3; do
  eval "u=\$url_$n p=\$pid_$n"
  # shellcheck disable=SC2154
  SKIFF_QUEUE_URL=$u "$bq/bench_queue_idle" --pid "$p" "$idle" 10 \
    >"$work/idle$n.out" 2>&1 &
  ipids+=($!)
done
for p in "${ipids[@]}"; do wait "$p" || { cat "$work"/idle*.out; exit 1; }; done
for n in 1 2 3; do sed "s/^/replica $n: /" "$work/idle$n.out"; done

echo "== 8 KiB appends/s and pickup with 1, 2 and 3 replicas on one database"
echo "   (each replica with its own load generator: the same 2 vCPUs serve"
echo "   PostgreSQL, the replicas and the generators)"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
for k in 1 2 3; do
  "$bindir/psql" -X -q -h 127.0.0.1 -p "$pgport" -U skiff -d postgres \
    -c "CREATE DATABASE scale$k"
  for i in $(seq "$k"); do
    PATH=$bindir:$PATH "$bq/bench_queue_logs" --queue "$queue" \
      --postgres "host=127.0.0.1 port=$pgport user=skiff" \
      --postgres-db "scale$k" --only ac --jobs "$((256 / k)),32,$((128 / k)),1024" \
      --seconds "${SKIFF_BENCH_SECONDS:-10}" >"$work/scale$k.$i" 2>&1 &
    ipids+=($!)
  done
  wait
  python3 - "$k" "$work"/scale"$k".* <<'PY'
import re, sys
k, files = sys.argv[1], sys.argv[2:]
tot, p99 = 0.0, []
for f in files:
    t = open(f).read()
    m = re.search(r"\(a\) 8 KiB appends/s\s+([0-9.]+)", t)
    tot += float(m.group(1)) if m else 0
    m = re.search(r"\(c\) pickup p99 ms\s+([0-9.]+)", t)
    if m:
        p99.append(float(m.group(1)))
print("%s replica(s): 8 KiB appends/s in all %.0f; pickup p99 under 1 MiB "
      "streams, per replica: %s ms" % (k, tot, ", ".join("%.1f" % v for v in p99)))
PY
done

logs=${SKIFF_BENCH_LOGS-abcd}
if [ -n "$logs" ]; then
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  PATH=$bindir:$PATH "$bq/bench_queue_logs" --queue "$queue" --baseline "$queue" \
    --postgres "host=127.0.0.1 port=$pgport user=skiff" --only "$logs" \
    --seconds "${SKIFF_BENCH_SECONDS:-10}"
fi
