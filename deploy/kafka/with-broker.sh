#!/usr/bin/env bash
# with-broker.sh CMD [ARGS...]: run CMD with KAFKA_BROKERS pointing at a real
# broker. If KAFKA_BROKERS is already set, CMD runs against it. Otherwise a
# fresh single-node broker is started in its own run dir (deploy/kafka/.run-test,
# ports from 29092, so it does not collide with `make kafka-up`), and stopped
# when CMD ends, whether it passed or failed; its data is deleted then (a
# `make bench` leaves tens of GB there), its logs kept until the next start.
# Exits with CMD's status.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
if [ -n "${KAFKA_BROKERS:-}" ]; then
  exec "$@"
fi
export KAFKA_RUN_DIR=${KAFKA_TEST_RUN_DIR:-$here/.run-test}
export KAFKA_BASE_PORT=${KAFKA_TEST_BASE_PORT:-29092}
trap '"$here/stop.sh" && rm -rf "$KAFKA_RUN_DIR"/node-*/data || true' EXIT
trap 'exit 130' INT TERM
KAFKA_BROKERS=$("$here/start.sh" 1)
export KAFKA_BROKERS
echo "with-broker: KAFKA_BROKERS=$KAFKA_BROKERS" >&2
set +e
"$@"
status=$?
set -e
exit $status
