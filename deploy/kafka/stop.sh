#!/usr/bin/env bash
# stop.sh: stop the Kafka started from KAFKA_RUN_DIR (all nodes) and leave no
# process behind: SIGTERM (controlled shutdown), then SIGKILL after 30 s
# (and up to 10 s more for the killed processes to go).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"

pids=$(our_pids | sort -u)
if [ -z "$pids" ]; then
  log "no Kafka running from $KAFKA_RUN_DIR"
  exit 0
fi
kill -TERM $pids 2>/dev/null || true
for _ in $(seq 1 150); do
  alive=""
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
  [ -z "$alive" ] && break
  sleep 0.2
done
if [ -n "${alive:-}" ]; then
  log "still running after 30s, killing:$alive"
  kill -KILL $alive 2>/dev/null || true
  # A killed JVM still has to tear down its heap before it is gone: up to
  # 10 s on a busy machine.
  for _ in $(seq 1 50); do
    [ -z "$(our_pids)" ] && break
    sleep 0.2
  done
fi
left=$(our_pids | sort -u)
[ -z "$left" ] || die "processes remain: $left"
rm -f "$KAFKA_RUN_DIR"/node-*/pid "$KAFKA_RUN_DIR/bootstrap"
log "stopped"
