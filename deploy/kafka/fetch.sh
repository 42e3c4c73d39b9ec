#!/usr/bin/env bash
# fetch.sh: collect the Kafka broker and tool jars named by pom.xml from Maven
# Central into a git-ignored cache, once. Later runs find the cache and return
# at once (offline). Prints the libs directory.
#
#   deploy/kafka/fetch.sh            # -> deploy/kafka/.cache/kafka-<version>/libs
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/kafka/common.sh
. "$here/common.sh"

if [ -f "$KAFKA_LIBS/.complete" ]; then
  echo "$KAFKA_LIBS"
  exit 0
fi
command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
command -v java >/dev/null || die "java not found: install a JDK 17+ (apt-get install openjdk-17-jdk-headless)"

tmp="$KAFKA_LIBS.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
mvn -B -q -f "$here/pom.xml" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 ||
  { rm -rf "$tmp"; die "maven could not collect the Kafka jars (see above)"; }

# All kafka-* jars must be of one version.
others=$(ls "$tmp" | grep -E '^kafka' | grep -v -- "-$KAFKA_VERSION.jar$" || true)
[ -z "$others" ] || { rm -rf "$tmp"; die "mixed Kafka versions in the jars: $others"; }
[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing"; }

touch "$tmp/.complete"
rm -rf "$KAFKA_LIBS"
mv "$tmp" "$KAFKA_LIBS"
log "$(ls "$KAFKA_LIBS" | wc -l) jars in $KAFKA_LIBS"
echo "$KAFKA_LIBS"
