#!/bin/bash
# Creates every topic of topics.conf that is missing and raises partition counts that are
# below the declared number (Kafka can add partitions, never remove them). Idempotent: runs
# after every sync of the kafka Application.
set -euo pipefail

bin=/opt/kafka/bin
until "$bin/kafka-broker-api-versions.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" \
  >/dev/null 2>&1; do
  echo "waiting for $KAFKA_BOOTSTRAP_SERVERS"
  sleep 5
done

while read -r topic partitions; do
  [[ -z "${topic}" || "${topic}" == \#* ]] && continue
  "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" \
    --replication-factor "$KAFKA_REPLICATION_FACTOR" \
    --config "min.insync.replicas=$KAFKA_MIN_INSYNC_REPLICAS"
  current=$("$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --describe \
    --topic "$topic" |
    awk '{for (i = 1; i < NF; i++) if ($i == "PartitionCount:") {print $(i + 1); exit}}')
  if ((current < partitions)); then
    "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --alter \
      --topic "$topic" --partitions "$partitions"
  fi
  echo "topic $topic: $partitions partitions"
done </etc/kafka/topics/topics.conf
