#!/bin/bash
# Starts one broker+controller of the KRaft StatefulSet: node.id is the pod ordinal, the
# controller quorum is the KAFKA_REPLICAS pods behind the headless Service. Writes the
# config to /tmp (the root filesystem is read-only), formats the data dir once, execs Kafka.
set -euo pipefail

ordinal=${HOSTNAME##*-}
domain="kafka-headless.${POD_NAMESPACE}.svc.cluster.local"
voters=""
for ((i = 0; i < KAFKA_REPLICAS; i++)); do
  voters+="${voters:+,}${i}@kafka-${i}.${domain}:9093"
done

config=/tmp/kafka/server.properties
mkdir -p /tmp/kafka
cat >"$config" <<PROPERTIES
process.roles=broker,controller
node.id=${ordinal}
controller.quorum.voters=${voters}
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://${HOSTNAME}.${domain}:9092
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=/var/lib/kafka/data/kraft
auto.create.topics.enable=false
num.partitions=6
default.replication.factor=${KAFKA_REPLICATION_FACTOR}
min.insync.replicas=${KAFKA_MIN_INSYNC_REPLICAS}
offsets.topic.replication.factor=${KAFKA_REPLICATION_FACTOR}
transaction.state.log.replication.factor=${KAFKA_REPLICATION_FACTOR}
transaction.state.log.min.isr=${KAFKA_MIN_INSYNC_REPLICAS}
group.initial.rebalance.delay.ms=0
PROPERTIES

/opt/kafka/bin/kafka-storage.sh format --ignore-formatted \
  --cluster-id "$KAFKA_CLUSTER_ID" --config "$config"
exec /opt/kafka/bin/kafka-server-start.sh "$config"
