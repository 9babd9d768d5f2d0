data "aws_region" "current" {}

################################################################################
# Parameters
################################################################################

locals {
  # Parameter name under the prefix => what it holds. The ExternalSecrets in git read exactly
  # these (`remoteRef.key`: platform/mongodb/overlays/aws/, services/deploy/overlays/aws/,
  # monitoring/kube-prometheus-stack/overlays/aws/); tests/terraform fails when they drift.
  parameters = {
    "mongodb/root-password"     = "MongoDB root user password"
    "mongodb/app-password"      = "MongoDB application user password (least-privilege pipeline user)"
    "mongodb/exporter-password" = "MongoDB exporter user password (clusterMonitor, read on local)"
    "grafana/admin-password"    = "Grafana admin password"
  }
  # Parameter name under the prefix => (key of var.alert_webhook_urls, what it holds): values a
  # person gives, not generated. The ExternalSecret of Alertmanager's receivers reads them.
  given = {
    "alertmanager/on-call-webhook-url" = ["on-call", "Webhook Alertmanager posts critical alerts to"]
    "alertmanager/team-webhook-url"    = ["team", "Webhook Alertmanager posts warnings to"]
    "alertmanager/on-call-slack-url"   = ["on-call-slack", "Slack incoming webhook for critical alerts"]
    "alertmanager/team-slack-url"      = ["team-slack", "Slack incoming webhook for warnings"]
  }
}

# Ephemeral: the passwords go to SSM through the write-only `value_wo` and never reach the
# plan or the state. Read them back with `aws ssm get-parameter --with-decryption`.
ephemeral "random_password" "this" {
  for_each = local.parameters

  length  = var.password_length
  special = false
}

resource "aws_ssm_parameter" "this" {
  for_each = local.parameters

  name             = "${var.parameter_prefix}/${each.key}"
  description      = each.value
  type             = "SecureString"
  key_id           = var.kms_key_arn
  value_wo         = ephemeral.random_password.this[each.key].result
  value_wo_version = var.password_version

  tags = merge({ Name = "${var.parameter_prefix}/${each.key}" }, var.tags)
}

# Write-only like the passwords: the URLs never reach the plan or the state. Unset, they name a
# local address nobody listens on (Alertmanager logs each failed notification); set them in
# alert_webhook_urls and bump alert_webhook_version, or `aws ssm put-parameter --overwrite`.
resource "aws_ssm_parameter" "given" {
  for_each = local.given

  name             = "${var.parameter_prefix}/${each.key}"
  description      = each.value[1]
  type             = "SecureString"
  key_id           = var.kms_key_arn
  value_wo         = lookup(var.alert_webhook_urls, each.value[0], "http://127.0.0.1:9/set-alert_webhook_urls")
  value_wo_version = var.alert_webhook_version

  tags = merge({ Name = "${var.parameter_prefix}/${each.key}" }, var.tags)
}

################################################################################
# External Secrets access
################################################################################

# External Secrets' `aws-ssm` ClusterSecretStore (platform/external-secrets/) carries no role
# ARN, since an account-specific ARN cannot live in git: the operator uses the credentials of
# the node its pod runs on (IMDSv2, hop limit 2). So the node role gets exactly this.
data "aws_iam_policy_document" "read" {
  statement {
    sid       = "ReadPipelineSecrets"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = concat([for p in aws_ssm_parameter.this : p.arn], [for p in aws_ssm_parameter.given : p.arn])
  }

  # The AWS managed key alias/aws/ssm lets every principal of the account decrypt through SSM
  # by its key policy; a customer managed key needs this, limited to SSM and these parameters.
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "DecryptPipelineSecrets"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${data.aws_region.current.region}.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:PARAMETER_ARN"
        values   = concat([for p in aws_ssm_parameter.this : p.arn], [for p in aws_ssm_parameter.given : p.arn])
      }
    }
  }
}

resource "aws_iam_policy" "read" {
  name        = "${var.name}-external-secrets-read"
  description = "Read exactly the pipeline's SSM parameters (External Secrets Operator on the K3s nodes)"
  policy      = data.aws_iam_policy_document.read.json

  tags = merge({ Name = "${var.name}-external-secrets-read" }, var.tags)
}

resource "aws_iam_role_policy_attachment" "node_read" {
  role       = var.node_role_name
  policy_arn = aws_iam_policy.read.arn
}
