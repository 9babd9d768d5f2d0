locals {
  server_id = module.cluster.server_instance_id
  kubectl   = "KUBECONFIG=$PWD/kubeconfig-aws.yaml kubectl"

  api_tunnel_command = join(" ", [
    "aws ssm start-session --region ${var.region} --target ${local.server_id}",
    "--document-name AWS-StartPortForwardingSession",
    "--parameters '{\"portNumber\":[\"6443\"],\"localPortNumber\":[\"6443\"]}'",
  ])

  # k3s.yaml points at https://127.0.0.1:6443, which is where the tunnel above listens.
  kubeconfig_command = join(" ", [
    "(umask 077; aws ssm start-session --region ${var.region} --target ${local.server_id}",
    "--document-name AWS-StartInteractiveCommand",
    "--parameters command='sudo cat /etc/rancher/k3s/k3s.yaml'",
    "| tr -d '\\r' | grep -v -e '^Starting session' -e '^Exiting session' > kubeconfig-aws.yaml)",
  ])

  argocd_command = join(" ", [
    "${local.kubectl} -n ${var.port_forward.argocd_namespace} port-forward",
    "\"$(${local.kubectl} -n ${var.port_forward.argocd_namespace} get svc -l ${var.port_forward.argocd_selector} -o name | head -n 1)\"",
    "8080:80",
  ])

  grafana_command = join(" ", [
    "${local.kubectl} -n ${var.port_forward.grafana_namespace} port-forward",
    "\"$(${local.kubectl} -n ${var.port_forward.grafana_namespace} get svc -l ${var.port_forward.grafana_selector} -o name | head -n 1)\"",
    "3000:80",
  ])

  grafana_password_command = join(" ", [
    "aws ssm get-parameter --region ${var.region}",
    "--name ${module.secrets.parameter_names["grafana/admin-password"]}",
    "--with-decryption --query Parameter.Value --output text",
  ])
}

################################################################################
# Network
################################################################################

output "vpc_id" {
  description = "ID of the VPC."
  value       = try(module.network.vpc_id, null)
}

output "nat_public_ips" {
  description = "Egress addresses of the private nodes (empty when nat_mode is none)."
  value       = try(module.network.nat_public_ips, [])
}

################################################################################
# K3s cluster
################################################################################

output "server_instance_id" {
  description = "Instance ID of the K3s server: the target of every `aws ssm start-session` below."
  value       = try(module.cluster.server_instance_id, null)
}

output "server_private_ip" {
  description = "Private IPv4 address of the K3s server."
  value       = try(module.cluster.server_private_ip, null)
}

output "api_endpoint" {
  description = "Public K3s API endpoint for the api_allowed_cidrs, null when the server has no public address (use the SSM tunnel)."
  value       = try(module.cluster.server_public_ip != null ? "https://${module.cluster.server_public_ip}:6443" : null, null)
}

output "agent_instance_ids" {
  description = "Instance IDs of the CPU agents."
  value       = try(module.cluster.agent_instance_ids, [])
}

output "gpu_agent_instance_id" {
  description = "Instance ID of the GPU agent, null when it is disabled."
  value       = try(module.cluster.gpu_agent_instance_id, null)
}

output "k3s_token_parameter" {
  description = "SSM parameter holding the K3s join token (SecureString)."
  value       = try(module.cluster.token_parameter_name, null)
}

output "bootstrap_manifests" {
  description = "Files the server applies once from K3s's auto-deploy folder (/var/lib/rancher/k3s/server/manifests), in order, before Argo CD takes them over: file name => repo path."
  value       = try(local.bootstrap_files, {})

  precondition {
    condition = alltrue([
      for content in values(local.bootstrap_manifests) :
      !strcontains(try(jsonencode(yamldecode(content)), content), local.repo_placeholder)
    ])
    error_message = "A bootstrap manifest still names the repository as \"${local.repo_placeholder}\" after the root Application's repoURL was filled into its `- ${local.repo_placeholder}` list items: only AppProject sourceRepos can carry the placeholder here."
  }
}

output "server_user_data_bytes" {
  description = "Size of the server's gzipped user data (EC2 limit: 16384 bytes)."
  value       = try(module.cluster.server_user_data_bytes, null)
}

output "api_tunnel_command" {
  description = "Forwards localhost:6443 to the K3s API through Session Manager; keep it running while you use kubectl."
  value       = local.api_tunnel_command
}

output "kubeconfig_command" {
  description = "Copies the admin kubeconfig from the server through Session Manager into ./kubeconfig-aws.yaml (mode 0600). It talks to https://127.0.0.1:6443, the tunnel."
  value       = local.kubeconfig_command
}

output "argocd_port_forward_command" {
  description = "Serves the Argo CD UI on http://localhost:8080 (needs the tunnel and the kubeconfig)."
  value       = local.argocd_command
}

output "grafana_port_forward_command" {
  description = "Serves Grafana on http://localhost:3000 (needs the tunnel and the kubeconfig)."
  value       = local.grafana_command
}

################################################################################
# Secrets
################################################################################

output "secret_parameters" {
  description = "SSM SecureString parameters External Secrets reads with the node role, keyed by what they hold."
  value       = try(module.secrets.parameter_names, {})

  precondition {
    condition     = var.region == local.secret_store_region
    error_message = "External Secrets reads SSM in ${local.secret_store_region} (spec.provider.aws.region in ${local.secret_store_manifest}), but region is ${var.region}: change both together."
  }
}

output "secret_read_policy_arn" {
  description = "IAM policy on the node role that reads exactly the secret_parameters (External Secrets uses it through the instance metadata)."
  value       = try(module.secrets.read_policy_arn, null)
}

output "grafana_admin_password_command" {
  description = "Prints the Grafana admin password (user: admin) from SSM."
  value       = local.grafana_password_command
}

output "next_steps" {
  description = "What to run after apply, in order."
  value       = <<-EOT
    Argo CD comes up on its own: K3s applies the bootstrap AppProject, Argo CD's HelmChart and
    the aws root Application from its auto-deploy folder a few minutes after the server boots,
    then leaves them to Argo CD (/var/log/cloud-init-output.log on the server shows progress).

    1. Tunnel to the K3s API (leave it running):
         ${local.api_tunnel_command}
    2. Fetch the kubeconfig, then check the nodes:
         ${local.kubeconfig_command}
         ${local.kubectl} get nodes
    3. Replace Argo CD's generated admin password (once; it prints the new one once):
         KUBECONFIG=$PWD/kubeconfig-aws.yaml ../bootstrap/argo-cd/rotate-admin-password.sh
       Argo CD on http://localhost:8080 (user admin):
         ${local.argocd_command}
    4. Grafana on http://localhost:3000 (user admin):
         ${local.grafana_password_command}
         ${local.grafana_command}
  EOT
}
