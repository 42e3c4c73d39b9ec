#!/usr/bin/env bash
# start.sh [NODES]: start a fresh KRaft Kafka on 127.0.0.1 from the cached jars
# and wait until it is ready. NODES=1 (default) is a single combined
# broker+controller; NODES=3 is a three-node cluster (each node a broker and a
# controller voter) for failover tests. Every start formats fresh data dirs
# under KAFKA_RUN_DIR. Prints the bootstrap address on stdout (and writes it to
# KAFKA_RUN_DIR/bootstrap). Settings: see common.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"

nodes=${1:-${NODES:-1}}
case "$nodes" in 1|3) ;; *) die "NODES must be 1 or 3, got '$nodes'" ;; esac
case "$KAFKA_SECURITY" in
  plaintext) ;;
  sasl_ssl)
    for v in KAFKA_TLS_CERT KAFKA_TLS_KEY KAFKA_SASL_USER KAFKA_SASL_PASSWORD; do
      [ -n "${!v:-}" ] || die "KAFKA_SECURITY=sasl_ssl needs $v (see common.sh)"
    done
    for f in "$KAFKA_TLS_CERT" "$KAFKA_TLS_KEY"; do [ -r "$f" ] || die "cannot read $f"; done
    grep -q 'BEGIN PRIVATE KEY' "$KAFKA_TLS_KEY" || die "KAFKA_TLS_KEY must be an unencrypted PKCS#8 PEM key (BEGIN PRIVATE KEY)"
    case "$KAFKA_SASL_PASSWORD$KAFKA_SASL_USER" in *'"'*|*'\'*|*,*|*']'*) die "KAFKA_SASL_USER/PASSWORD must not contain '\"', '\\', ',' or ']'" ;; esac
    ;;
  *) die "KAFKA_SECURITY must be plaintext or sasl_ssl, got '$KAFKA_SECURITY'" ;;
esac

"$here/fetch.sh" >/dev/null
running=$(our_pids | sort -u)
[ -z "$running" ] || die "a Kafka from $KAFKA_RUN_DIR is already running (pids $(echo $running)); stop it first (make kafka-down)"
for i in $(seq 1 "$nodes"); do
  for p in $((KAFKA_BASE_PORT + 2*(i-1))) $((KAFKA_BASE_PORT + 2*(i-1) + 1)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p on 127.0.0.1 is in use; set KAFKA_BASE_PORT to a free range"
    fi
  done
  if [ "$KAFKA_SECURITY" = sasl_ssl ] && (exec 3<>"/dev/tcp/127.0.0.1/$((KAFKA_SECURE_BASE_PORT + i - 1))") 2>/dev/null; then
    die "port $((KAFKA_SECURE_BASE_PORT + i - 1)) on 127.0.0.1 is in use; set KAFKA_SECURE_BASE_PORT to a free range"
  fi
done

rm -rf "$KAFKA_RUN_DIR"
mkdir -p "$KAFKA_RUN_DIR"
# A random 16-byte ID in URL-safe base64, as kafka-storage random-uuid makes
# it; like Kafka's Uuid.randomUuid, never one that starts with '-', which
# the format command's argument parser takes for an option (1 start in 64
# failed with "argument --cluster-id/-t: expected one argument").
cluster_id=-
while [ "${cluster_id#-}" != "$cluster_id" ]; do
  cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
done
rf=1; isr=1
[ "$nodes" = 3 ] && { rf=3; isr=2; }
voters=""
for i in $(seq 1 "$nodes"); do
  voters="${voters:+$voters,}$i@127.0.0.1:$((KAFKA_BASE_PORT + 2*(i-1) + 1))"
done

cat > "$KAFKA_RUN_DIR/log4j2.properties" <<'LOG'
# Broker logging for orderflow's test Kafka: INFO to server.log in kafka.logs.dir,
# WARN and above to stdout (node.out).
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
appender.out.filter.threshold.type = ThresholdFilter
appender.out.filter.threshold.level = warn
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = info
LOG

java_opts=(-Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_RUN_DIR/log4j2.properties")

# SASL_SSL (KAFKA_SECURITY=sasl_ssl): one PEM keystore file (key + chain) and
# SCRAM credentials written into the metadata log by the format step.
format_extra=()
if [ "$KAFKA_SECURITY" = sasl_ssl ]; then
  cat "$KAFKA_TLS_KEY" "$KAFKA_TLS_CERT" > "$KAFKA_RUN_DIR/keystore.pem"
  chmod 600 "$KAFKA_RUN_DIR/keystore.pem"
  for m in SCRAM-SHA-256 SCRAM-SHA-512; do
    format_extra+=(--add-scram "$m=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]")
  done
fi

bootstrap=""
secure_bootstrap=""
for i in $(seq 1 "$nodes"); do
  port=$((KAFKA_BASE_PORT + 2*(i-1))); ctrl=$((port + 1))
  d="$KAFKA_RUN_DIR/node-$i"
  mkdir -p "$d/data" "$d/logs"
  bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:$port"
  cat > "$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=12
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.cleaner.backoff.ms=200
log.cleaner.dedupe.buffer.size=16777216
PROPS
  if [ "$KAFKA_SECURITY" = sasl_ssl ]; then
    sport=$((KAFKA_SECURE_BASE_PORT + i - 1))
    secure_bootstrap="${secure_bootstrap:+$secure_bootstrap,}127.0.0.1:$sport"
    sed -i \
      -e "s|^listeners=.*|&,SASL_SSL://127.0.0.1:$sport|" \
      -e "s|^advertised.listeners=.*|&,SASL_SSL://127.0.0.1:$sport|" \
      -e "s|^listener.security.protocol.map=.*|&,SASL_SSL:SASL_SSL|" \
      "$d/server.properties"
    cat >> "$d/server.properties" <<PROPS
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_RUN_DIR/keystore.pem
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
PROPS
    chmod 600 "$d/server.properties"
  fi
  java "${java_opts[@]}" -Dkafka.logs.dir="$d/logs" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool \
    format -t "$cluster_id" -c "$d/server.properties" ${format_extra[@]+"${format_extra[@]}"} > "$d/format.out" 2>&1 &
done
wait || true
for i in $(seq 1 "$nodes"); do
  d="$KAFKA_RUN_DIR/node-$i"
  [ -f "$d/data/meta.properties" ] || die "formatting node $i failed: $(tail -5 "$d/format.out")"
done

start_ns=$(date +%s%N)
for i in $(seq 1 "$nodes"); do
  d="$KAFKA_RUN_DIR/node-$i"
  # run.sh starts this node again on the same data (tests restart nodes with it).
  {
    echo '#!/usr/bin/env bash'
    printf 'exec java'; printf ' %q' "${java_opts[@]}" "-Dkafka.logs.dir=$d/logs" -cp "$KAFKA_LIBS/*" kafka.Kafka "$d/server.properties"
    printf ' >> %q 2>&1 < /dev/null\n' "$d/node.out"
  } > "$d/run.sh"
  # setsid: the broker gets its own session, so it outlives this script and a
  # Ctrl-C in the caller's terminal does not reach it; stop.sh stops it.
  setsid bash "$d/run.sh" &
  echo $! > "$d/pid"
done

# Ready: every client port accepts TCP (the acceptor opens once the broker is
# unfenced), then a Metadata request lists all the brokers.
deadline=$(( $(date +%s) + 120 ))
for i in $(seq 1 "$nodes"); do
  port=$((KAFKA_BASE_PORT + 2*(i-1)))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$(cat "$KAFKA_RUN_DIR/node-$i/pid")" 2>/dev/null ||
      die "node $i exited during start-up: $(tail -20 "$KAFKA_RUN_DIR/node-$i/node.out")"
    [ "$(date +%s)" -lt "$deadline" ] || die "node $i not listening on $port after 120s (logs: $KAFKA_RUN_DIR/node-$i/logs)"
    sleep 0.2
  done
done
(cd "$here/../.." && go run ./deploy/kafka/kmeta -brokers "$bootstrap" -expect "$nodes" -timeout 60s >&2) ||
  die "brokers did not all register (logs: $KAFKA_RUN_DIR/node-*/logs)"
echo "$bootstrap" > "$KAFKA_RUN_DIR/bootstrap"
if [ -n "$secure_bootstrap" ]; then
  for a in ${secure_bootstrap//,/ }; do
    until (exec 3<>"/dev/tcp/${a%:*}/${a#*:}") 2>/dev/null; do
      [ "$(date +%s)" -lt "$deadline" ] || die "SASL_SSL listener $a not open (logs: $KAFKA_RUN_DIR/node-*/logs)"
      sleep 0.2
    done
  done
  echo "$secure_bootstrap" > "$KAFKA_RUN_DIR/bootstrap-sasl-ssl"
  log "SASL_SSL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 for user $KAFKA_SASL_USER): $secure_bootstrap"
fi
log "Kafka $KAFKA_VERSION ready with $nodes node(s) in $(( ($(date +%s%N) - start_ns) / 1000000 )) ms; run dir $KAFKA_RUN_DIR"
echo "$bootstrap"
