#!/bin/bash
# Creates every topic of topics.conf that is missing, raises partition counts that are below
# the declared number (Kafka can add partitions, never remove them) and sets the declared
# topic configs (retention.ms, ...) on every topic, new or existing. Idempotent: runs after
# every sync of the kafka Application.
set -euo pipefail

# The image's paths; overridable so that tests run this script against a local broker.
bin=${KAFKA_BIN_DIR:-/opt/kafka/bin}
topics_conf=${TOPICS_CONF:-/etc/kafka/topics/topics.conf}

until "$bin/kafka-broker-api-versions.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" \
  >/dev/null 2>&1; do
  echo "waiting for $KAFKA_BOOTSTRAP_SERVERS"
  sleep 5
done

# Each line: name partitions [key=value ...]; `#` starts a comment. Read on fd 3, so that
# nothing the loop runs can eat the file through stdin.
while IFS= read -r -u 3 line || [[ -n "${line}" ]]; do
  line=${line%%#*}
  read -r topic partitions configs <<<"${line}" || true
  [[ -z "${topic:-}" ]] && continue
  read -r -a settings <<<"${configs:-}" || true
  create_configs=(--config "min.insync.replicas=$KAFKA_MIN_INSYNC_REPLICAS")
  for setting in "${settings[@]}"; do
    create_configs+=(--config "$setting")
  done
  "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" \
    --replication-factor "$KAFKA_REPLICATION_FACTOR" "${create_configs[@]}"
  current=$("$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --describe \
    --topic "$topic" |
    awk '{for (i = 1; i < NF; i++) if ($i == "PartitionCount:") {print $(i + 1); exit}}')
  if ((current < partitions)); then
    "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --alter \
      --topic "$topic" --partitions "$partitions"
  fi
  # A topic that existed before keeps its old configs unless told: set the declared ones
  # (--add-config sets these keys and leaves the topic's other overrides as they are).
  if ((${#settings[@]} > 0)); then
    "$bin/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --alter \
      --entity-type topics --entity-name "$topic" \
      --add-config "$(
        IFS=,
        echo "${settings[*]}"
      )"
  fi
  echo "topic $topic: $partitions partitions${configs:+, $configs}"
done 3<"$topics_conf"
