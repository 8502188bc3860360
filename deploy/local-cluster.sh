#!/usr/bin/env bash
# A local Portunus cluster: redis-server, two gateways, two media nodes and nginx round-robin in
# front, all on loopback. Clients use ws://127.0.0.1:8188 and http://127.0.0.1:8088/janus.
#
#   deploy/local-cluster.sh start    # builds (release) and starts everything
#   deploy/local-cluster.sh stop     # stops what start started (by PID)
#
# Needs redis-server and nginx (apt-get install redis-server nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${PORTUNUS_RUN_DIR:-/tmp/portunus-local-cluster}
REDIS_PORT=${REDIS_PORT:-6391}

start() {
  mkdir -p "$RUN"
  cargo build --release --locked -p gateway -p media-node
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --dir "$RUN" --daemonize yes \
    --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
  local url="redis://127.0.0.1:$REDIS_PORT/"
  for n in 1 2; do
    target/release/portunus-media-node --redis-url "$url" --node-id "node-$n" --admin-port "709$n" \
      >"$RUN/node-$n.log" 2>&1 &
    echo $! >"$RUN/node-$n.pid"
  done
  for g in 1 2; do
    target/release/portunus-gateway --redis-url "$url" --bind 127.0.0.1 \
      --ws-port "1${g}188" --http-port "1${g}088" --admin-port "1${g}708" >"$RUN/gateway-$g.log" 2>&1 &
    echo $! >"$RUN/gateway-$g.pid"
  done
  sed -e "s#@RUN_DIR@#$RUN#g" -e "s#@LISTEN@#127.0.0.1#g" -e "s#@HTTP_PORT@#8088#" -e "s#@WS_PORT@#8188#" \
      -e "s#@HTTP_UPSTREAMS@#server 127.0.0.1:11088; server 127.0.0.1:12088;#" \
      -e "s#@WS_UPSTREAMS@#server 127.0.0.1:11188; server 127.0.0.1:12188;#" \
      deploy/nginx/portunus.conf.template >"$RUN/nginx.conf"
  nginx -c "$RUN/nginx.conf" -p "$RUN"
  echo "Portunus cluster up: ws://127.0.0.1:8188  http://127.0.0.1:8088/janus  (logs in $RUN)"
  echo "Gateway metrics: http://127.0.0.1:11708/metrics, http://127.0.0.1:12708/metrics"
}

stop() {
  for f in "$RUN"/gateway-*.pid "$RUN"/node-*.pid "$RUN"/nginx.pid "$RUN"/redis.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  echo "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
