#!/usr/bin/env bash
# Creates the Secrets the local cluster needs, from random values, with kubectl only. On aws
# the same Secrets come from SSM Parameter Store through External Secrets. Nothing is written
# to git or to disk. Run it once after applying the root app (the namespaces must exist);
# it keeps existing Secrets, so MongoDB's stored credentials stay valid on later runs.
#
#   mongodb/mongodb-root              username, password    MongoDB root user
#   mongodb/mongodb-app               password              application user (gpu_analytics)
#   mongodb/mongodb-exporter          password, MONGODB_URI the exporter's user (exporter)
#   pipeline/processor-mongodb        MONGODB_URI           the processor's connection string
#   kube-prometheus-stack/grafana-admin  admin-user, admin-password
#   kube-prometheus-stack/alertmanager-receivers  on-call-webhook-url, team-webhook-url,
#                                                 on-call-slack-url, team-slack-url
#   argocd/argocd-notifications-secret            the same four keys
#
# Usage: create-secrets.sh [NAMESPACE...]   only the Secrets of these namespaces (default: all)
set -euo pipefail

KUBECTL=${KUBECTL:-kubectl}
only=("$@")

# 24 characters from [A-Za-z0-9]. No `tr </dev/urandom | head` pipeline: when head closes the
# pipe, tr dies of SIGPIPE, and pipefail + set -e end the script without a word. tr reads a
# bounded input instead (4 KiB hold about 990 such characters).
random() {
  local chars
  chars=$(LC_ALL=C tr -dc 'A-Za-z0-9' < <(head -c 4096 /dev/urandom))
  [ "${#chars}" -ge 24 ] || { echo "create-secrets: /dev/urandom gave too little" >&2; exit 1; }
  printf '%s' "${chars:0:24}"
}

wait_namespace() {
  local i
  for ((i = 0; i < 60; i++)); do
    "$KUBECTL" get namespace "$1" >/dev/null 2>&1 && return 0
    sleep 5
  done
  echo "namespace $1 not found: apply clusters/local/root-app.yaml first" >&2
  exit 1
}

create() { # namespace name key=value...
  local ns=$1 name=$2
  shift 2
  if [ "${#only[@]}" -gt 0 ] && [[ " ${only[*]} " != *" $ns "* ]]; then return; fi
  wait_namespace "$ns"
  if "$KUBECTL" -n "$ns" get secret "$name" >/dev/null 2>&1; then
    echo "secret $ns/$name exists, kept"
    return
  fi
  local args=()
  local pair
  for pair in "$@"; do args+=("--from-literal=$pair"); done
  "$KUBECTL" -n "$ns" create secret generic "$name" "${args[@]}" >/dev/null
  echo "secret $ns/$name created"
}

# Where alerts (Alertmanager) and Argo CD's notifications go: critical alerts, failed syncs and
# Degraded applications to on-call, warnings and deployments to team. ALERT_WEBHOOK_URL, or
# each of ON_CALL_WEBHOOK_URL and TEAM_WEBHOOK_URL; Slack incoming webhooks SLACK_WEBHOOK_URL,
# or ON_CALL_SLACK_URL and TEAM_SLACK_URL (Alertmanager reads them with
# monitoring/kube-prometheus-stack/alertmanager-slack.yaml among its values files). Unset, they
# name a local address nobody listens on, and each failed notification is logged.
unset_url=http://127.0.0.1:9/set-ALERT_WEBHOOK_URL
receivers=(
  "on-call-webhook-url=${ON_CALL_WEBHOOK_URL:-${ALERT_WEBHOOK_URL:-$unset_url}}"
  "team-webhook-url=${TEAM_WEBHOOK_URL:-${ALERT_WEBHOOK_URL:-$unset_url}}"
  "on-call-slack-url=${ON_CALL_SLACK_URL:-${SLACK_WEBHOOK_URL:-$unset_url}}"
  "team-slack-url=${TEAM_SLACK_URL:-${SLACK_WEBHOOK_URL:-$unset_url}}"
)
# argocd first: its namespace exists before the root Application (install.sh creates this
# one before applying the root, so the first syncs are announced too).
create argocd argocd-notifications-secret "${receivers[@]}"
create kube-prometheus-stack alertmanager-receivers "${receivers[@]}"

# The application password is shared by two Secrets: reuse the stored one when present.
app_password=$("$KUBECTL" -n mongodb get secret mongodb-app -o jsonpath='{.data.password}' 2>/dev/null |
  base64 -d 2>/dev/null || true)
app_password=${app_password:-$(random)}
exporter_password=$(random)

create mongodb mongodb-root username=root "password=$(random)"
create mongodb mongodb-app "password=$app_password"
create mongodb mongodb-exporter "password=$exporter_password" \
  "MONGODB_URI=mongodb://exporter:${exporter_password}@mongodb.mongodb.svc.cluster.local:27017/admin?authSource=admin"
create pipeline processor-mongodb \
  "MONGODB_URI=mongodb://gpu_analytics:${app_password}@mongodb.mongodb.svc.cluster.local:27017/gpu_analytics?authSource=gpu_analytics"
create kube-prometheus-stack grafana-admin admin-user=admin "admin-password=$(random)"
echo "Grafana admin password: kubectl -n kube-prometheus-stack get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d"
