#!/usr/bin/env bash
# Replace Argo CD's generated initial admin password with a new random one, then delete
# argocd-initial-admin-secret, so no install-time password stays in use
# (https://argo-cd.readthedocs.io/en/stable/getting_started/#4-login-using-the-cli).
# Needs only kubectl; the bcrypt hash comes from the argocd binary inside argocd-server.
# Prints the new password once. Safe to run again: each run sets a fresh password.
set -euo pipefail

ns=${ARGOCD_NAMESPACE:-argocd}
kubectl -n "$ns" rollout status deploy/argocd-server --timeout=300s >/dev/null

password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24)
hash=$(kubectl -n "$ns" exec deploy/argocd-server -- argocd account bcrypt --password "$password")
mtime=$(date -u +%Y-%m-%dT%H:%M:%SZ)

kubectl -n "$ns" patch secret argocd-secret --type merge \
  -p "{\"stringData\": {\"admin.password\": \"$hash\", \"admin.passwordMtime\": \"$mtime\"}}" >/dev/null
kubectl -n "$ns" delete secret argocd-initial-admin-secret --ignore-not-found >/dev/null

printf 'Argo CD admin password (shown once, store it in your password manager): %s\n' "$password"
