data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

################################################################################
# Join token
################################################################################

# Ephemeral: the token exists only during plan/apply and reaches AWS through the write-only
# `value_wo`, so it is in neither the plan nor the state. K3s cannot change the token of a
# running cluster, so the version stays 1.
ephemeral "random_password" "token" {
  length  = 48
  special = false
}

resource "aws_ssm_parameter" "token" {
  name             = var.token_parameter_name
  description      = "K3s join token of ${var.name}; nodes read it at boot through their instance role."
  type             = "SecureString"
  key_id           = var.kms_key_arn
  value_wo         = ephemeral.random_password.token.result
  value_wo_version = 1

  tags = merge({ Name = "${var.name}-k3s-token" }, var.tags)
}

################################################################################
# Node role (SSM Session Manager instead of SSH keys)
################################################################################

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    sid     = "Ec2AssumesNodeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name}-node"
  description        = "K3s nodes of ${var.name}: Session Manager, the join token, External Secrets' parameters"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json

  tags = merge({ Name = "${var.name}-node" }, var.tags)
}

# Session Manager only, as in AWS's custom instance profile for Session Manager. Not the
# managed AmazonSSMManagedInstanceCore: it also allows ssm:GetParameter(s) on every parameter
# of the account, and pods reach this role through the instance metadata (hop limit 2), so
# the role would read far more than the join token and External Secrets' three parameters.
data "aws_iam_policy_document" "session_manager" {
  statement {
    sid       = "RegisterWithSystemsManager"
    actions   = ["ssm:UpdateInstanceInformation"]
    resources = ["arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:instance/*"]
  }

  # These actions take no resource (Service Authorization Reference: ssmmessages).
  statement {
    sid = "SessionManagerChannels"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "session_manager" {
  name   = "session-manager"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.session_manager.json
}

data "aws_iam_policy_document" "read_token" {
  statement {
    sid       = "ReadJoinToken"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.token.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid       = "DecryptJoinToken"
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
        values   = [aws_ssm_parameter.token.arn]
      }
    }
  }
}

resource "aws_iam_role_policy" "read_token" {
  name   = "read-k3s-token"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.read_token.json
}

resource "aws_iam_instance_profile" "node" {
  name = "${var.name}-node"
  role = aws_iam_role.node.name

  tags = merge({ Name = "${var.name}-node" }, var.tags)
}

################################################################################
# Images
################################################################################

data "aws_ssm_parameter" "ubuntu" {
  count = var.ami_id == null ? 1 : 0

  name = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
}

data "aws_ssm_parameter" "gpu" {
  count = var.gpu_agent.enabled && var.gpu_agent.ami_id == null ? 1 : 0

  name = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
}

locals {
  ami_id     = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.ubuntu[0].insecure_value
  gpu_ami_id = var.gpu_agent.ami_id != null ? var.gpu_agent.ami_id : try(data.aws_ssm_parameter.gpu[0].insecure_value, null)
}

################################################################################
# Cloud-init
################################################################################

module "server_cloud_init" {
  source = "../k3s-cloud-init"

  role                 = "server"
  k3s_version          = var.k3s_version
  installer_sha256     = var.installer_sha256
  region               = data.aws_region.current.region
  token_parameter_name = aws_ssm_parameter.token.name

  k3s_config = {
    "write-kubeconfig-mode" = "0600"
    "secrets-encryption"    = true
    "flannel-backend"       = var.flannel_backend
    "disable"               = var.k3s_disable
  }

  # The bootstrap manifests are applied once and then left to Argo CD; K3s keeps the
  # RuntimeClass (no Application manages it) applied at every start.
  manifests = merge(
    var.bootstrap_manifests,
    var.gpu_agent.enabled ? { "runtimeclass-nvidia.yaml" = file("${path.module}/manifests/runtimeclass-nvidia.yaml") } : {},
  )
  apply_once = keys(var.bootstrap_manifests)
}

module "agent_cloud_init" {
  source = "../k3s-cloud-init"

  role                 = "agent"
  k3s_version          = var.k3s_version
  installer_sha256     = var.installer_sha256
  region               = data.aws_region.current.region
  token_parameter_name = aws_ssm_parameter.token.name
  server_url           = "https://${aws_instance.server.private_ip}:6443"
}

module "gpu_cloud_init" {
  source = "../k3s-cloud-init"

  role                   = "agent"
  k3s_version            = var.k3s_version
  installer_sha256       = var.installer_sha256
  region                 = data.aws_region.current.region
  token_parameter_name   = aws_ssm_parameter.token.name
  server_url             = "https://${aws_instance.server.private_ip}:6443"
  require_nvidia_runtime = true

  k3s_config = {
    # The label the NVML producer DaemonSet (services/deploy/base/producer-nvml-daemonset.yaml)
    # and the `nvidia` RuntimeClass select GPU nodes by; NVIDIA's device plugin chart uses it too.
    "node-label" = ["nvidia.com/gpu.present=true"]
    "node-taint" = var.gpu_agent.taint ? ["nvidia.com/gpu=present:NoSchedule"] : []
  }
}

################################################################################
# Server
################################################################################

resource "aws_instance" "server" {
  ami                         = local.ami_id
  instance_type               = var.server.instance_type
  subnet_id                   = var.server_subnet_id
  associate_public_ip_address = var.server_public_ip
  vpc_security_group_ids      = [var.server_security_group_id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  ebs_optimized               = true
  monitoring                  = var.detailed_monitoring
  user_data_base64            = module.server_cloud_init.user_data_base64

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = var.imds_hop_limit
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.server.root_volume_size
    encrypted             = true
    delete_on_termination = true
    tags                  = merge({ Name = "${var.name}-server" }, var.tags)
  }

  tags = merge({ Name = "${var.name}-server", "k3s-role" = "server" }, var.tags)

  # A new image or user data would otherwise replace (or stop and start) the node, and cloud-init
  # runs only on first boot anyway. Roll a node on purpose with `terraform apply -replace=...`.
  lifecycle {
    ignore_changes = [ami, user_data_base64]
  }

  depends_on = [aws_iam_role_policy.read_token, aws_iam_role_policy.session_manager]
}

################################################################################
# Agents
################################################################################

resource "aws_instance" "agent" {
  count = var.agents.count

  ami                         = local.ami_id
  instance_type               = var.agents.instance_type
  subnet_id                   = var.agent_subnet_ids[count.index % length(var.agent_subnet_ids)]
  associate_public_ip_address = var.agent_public_ip
  vpc_security_group_ids      = [var.agent_security_group_id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  ebs_optimized               = true
  monitoring                  = var.detailed_monitoring
  user_data_base64            = module.agent_cloud_init.user_data_base64

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = var.imds_hop_limit
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.agents.root_volume_size
    encrypted             = true
    delete_on_termination = true
    tags                  = merge({ Name = "${var.name}-agent-${count.index}" }, var.tags)
  }

  tags = merge({ Name = "${var.name}-agent-${count.index}", "k3s-role" = "agent" }, var.tags)

  lifecycle {
    ignore_changes = [ami, user_data_base64]
  }
}

################################################################################
# GPU agent
################################################################################

resource "aws_instance" "gpu_agent" {
  count = var.gpu_agent.enabled ? 1 : 0

  ami                         = local.gpu_ami_id
  instance_type               = var.gpu_agent.instance_type
  subnet_id                   = var.agent_subnet_ids[0]
  associate_public_ip_address = var.agent_public_ip
  vpc_security_group_ids      = [var.agent_security_group_id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  ebs_optimized               = true
  monitoring                  = var.detailed_monitoring
  user_data_base64            = module.gpu_cloud_init.user_data_base64

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = var.imds_hop_limit
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.gpu_agent.root_volume_size
    encrypted             = true
    delete_on_termination = true
    tags                  = merge({ Name = "${var.name}-gpu-agent" }, var.tags)
  }

  tags = merge({ Name = "${var.name}-gpu-agent", "k3s-role" = "agent" }, var.tags)

  lifecycle {
    ignore_changes = [ami, user_data_base64]
  }
}
