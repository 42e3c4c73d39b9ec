# common.sh: settings shared by the deploy/kafka scripts. Sourced, not run.
#
# Environment (all optional):
#   KAFKA_RUN_DIR    where a running broker/cluster keeps its data, logs, pids
#                    (default deploy/kafka/.run); fresh on every start
#   KAFKA_BASE_PORT  client port of node 1 (default 19092); node i listens on
#                    BASE+2(i-1) for clients and BASE+2(i-1)+1 for the controller
#   KAFKA_HEAP       JVM heap per node (default 512m)
#   KAFKA_CACHE_DIR  where fetched jars are cached (default deploy/kafka/.cache)
#   KAFKA_SECURITY   plaintext (default) or sasl_ssl: sasl_ssl adds, on every node,
#                    a SASL_SSL client listener on KAFKA_SECURE_BASE_PORT+(i-1)
#                    (default BASE+1000) with the mechanisms PLAIN, SCRAM-SHA-256
#                    and SCRAM-SHA-512 for one user; the PLAINTEXT listeners
#                    (clients, inter-broker, controller) stay as they are.
#                    It needs:
#     KAFKA_TLS_CERT      PEM file: the broker certificate (chain), valid for 127.0.0.1
#     KAFKA_TLS_KEY       PEM file: its private key, PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted
#     KAFKA_SASL_USER     the SASL user (PLAIN and SCRAM)
#     KAFKA_SASL_PASSWORD its password (no '"' or '\'); it ends up in the run
#                         dir's server.properties: for test clusters only

kafka_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$kafka_dir/pom.xml")
KAFKA_CACHE_DIR=${KAFKA_CACHE_DIR:-$kafka_dir/.cache}
KAFKA_LIBS=$KAFKA_CACHE_DIR/kafka-$KAFKA_VERSION/libs
KAFKA_RUN_DIR=${KAFKA_RUN_DIR:-$kafka_dir/.run}
KAFKA_BASE_PORT=${KAFKA_BASE_PORT:-19092}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_SECURITY=${KAFKA_SECURITY:-plaintext}
KAFKA_SECURE_BASE_PORT=${KAFKA_SECURE_BASE_PORT:-$((KAFKA_BASE_PORT + 1000))}

log() { echo "kafka: $*" >&2; }
die() { echo "kafka: error: $*" >&2; exit 1; }

# our_pids prints the pids of live processes started from KAFKA_RUN_DIR.
our_pids() {
  local f pid
  for f in "$KAFKA_RUN_DIR"/node-*/pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
  done
  # Anything else whose command line names our run dir (e.g. a pid file lost).
  pgrep -f -- "$KAFKA_RUN_DIR/node-" 2>/dev/null || true
}
