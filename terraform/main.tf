provider "aws" {
  region = var.region
}

locals {
  # The cluster this root builds is `aws` (clusters/aws holds its root Application).
  cluster = "aws"
  prefix  = "${var.name}-${local.cluster}"

  tags = merge(
    {
      Project   = var.name
      Cluster   = local.cluster
      ManagedBy = "terraform"
    },
    var.tags,
  )

  # Without NAT the private subnets have no way out, so every node goes public (inbound is
  # still closed by the security groups). The server also goes public when the K3s API is
  # allow-listed for outside addresses.
  nodes_public  = var.nat_mode == "none"
  server_public = local.nodes_public || length(var.api_allowed_cidrs) > 0

  repo_root = "${path.module}/.."

  # The root Application names the repository the cluster syncs from, and
  # clusters/aws/kustomization.yaml copies its repoURL over the `from-root-app` placeholder of
  # every AppProject. The server has no checkout to run Kustomize on, so the same happens here
  # for the manifests it applies at install (bootstrap/README.md).
  root_app_repo_url = yamldecode(file("${local.repo_root}/${var.root_application}")).spec.source.repoURL
  repo_placeholder  = "from-root-app"

  # Repo files for K3s's auto-deploy folder, which K3s applies in name order: position, then
  # repo path (bootstrap/projects/bootstrap-appproject.yaml ->
  # 00-bootstrap-projects-bootstrap-appproject.yaml). The root Application comes last, after
  # the `bootstrap` AppProject it runs in.
  bootstrap_files = {
    for i, p in concat(var.bootstrap_manifests, [var.root_application]) :
    format("%02d-%s", i, replace(p, "/", "-")) => p
  }
  bootstrap_manifests = {
    for name, p in local.bootstrap_files : name => replace(
      file("${local.repo_root}/${p}"),
      "- ${local.repo_placeholder}",
      "- ${local.root_app_repo_url}",
    )
  }

  # External Secrets' `aws-ssm` ClusterSecretStore pins the region it reads SSM from.
  secret_store_manifest = "platform/external-secrets/aws-ssm-clustersecretstore.yaml"
  secret_store_region   = yamldecode(file("${local.repo_root}/${local.secret_store_manifest}")).spec.provider.aws.region
}

################################################################################
# Network
################################################################################

module "network" {
  source = "./modules/network"

  name     = local.prefix
  vpc_cidr = var.vpc_cidr
  azs      = var.azs
  nat_mode = var.nat_mode
  tags     = local.tags
}

################################################################################
# Security groups
################################################################################

module "security" {
  source = "./modules/security"

  name              = local.prefix
  vpc_id            = module.network.vpc_id
  api_allowed_cidrs = var.api_allowed_cidrs
  flannel_backend   = var.flannel_backend

  # kube-prometheus-stack's node-exporter runs on the host network; Prometheus scrapes it on
  # every node's address (apps/observability/kube-prometheus-stack.yaml).
  extra_node_ports = [
    {
      name        = "node-exporter"
      port        = 9100
      protocol    = "tcp"
      description = "Prometheus node-exporter (hostNetwork, kube-prometheus-stack)"
    },
  ]

  tags = local.tags
}

################################################################################
# K3s cluster
################################################################################

module "cluster" {
  source = "./modules/cluster"

  name             = local.prefix
  k3s_version      = var.k3s_version
  installer_sha256 = var.k3s_installer_sha256
  flannel_backend  = var.flannel_backend
  k3s_disable      = var.k3s_disable

  token_parameter_name = "${var.parameter_path}/k3s/token"
  kms_key_arn          = var.kms_key_arn

  server_subnet_id         = local.server_public ? module.network.public_subnet_ids[0] : module.network.private_subnet_ids[0]
  server_public_ip         = local.server_public
  agent_subnet_ids         = local.nodes_public ? module.network.public_subnet_ids : module.network.private_subnet_ids
  agent_public_ip          = local.nodes_public
  server_security_group_id = module.security.server_security_group_id
  agent_security_group_id  = module.security.agent_security_group_id

  ami_id              = var.ami_id
  server              = var.server
  agents              = var.agents
  gpu_agent           = var.gpu_agent
  imds_hop_limit      = var.imds_hop_limit
  detailed_monitoring = var.detailed_monitoring

  bootstrap_manifests = local.bootstrap_manifests

  tags = local.tags
}

################################################################################
# Secrets
################################################################################

# External Secrets reads these with the node role (no role ARN in git): the module attaches
# its read policy to that role.
module "secrets" {
  source = "./modules/secrets"

  name             = local.prefix
  parameter_prefix = var.parameter_path
  kms_key_arn      = var.kms_key_arn
  password_version = var.password_version
  node_role_name   = module.cluster.node_role_name

  alert_webhook_urls    = var.alert_webhook_urls
  alert_webhook_version = var.alert_webhook_version
  tags                  = local.tags
}
