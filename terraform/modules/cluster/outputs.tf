################################################################################
# Join token
################################################################################

output "token_parameter_name" {
  description = "SSM parameter holding the K3s join token."
  value       = try(aws_ssm_parameter.token.name, null)
}

output "token_parameter_arn" {
  description = "ARN of the SSM parameter holding the K3s join token."
  value       = try(aws_ssm_parameter.token.arn, null)
}

################################################################################
# Node role (SSM Session Manager instead of SSH keys)
################################################################################

output "node_role_name" {
  description = "IAM role of every node."
  value       = try(aws_iam_role.node.name, null)
}

output "node_role_arn" {
  description = "ARN of the IAM role of every node."
  value       = try(aws_iam_role.node.arn, null)
}

################################################################################
# Server
################################################################################

output "server_instance_id" {
  description = "Instance ID of the K3s server (the target of `aws ssm start-session`)."
  value       = try(aws_instance.server.id, null)
}

output "server_private_ip" {
  description = "Private IPv4 address of the K3s server."
  value       = try(aws_instance.server.private_ip, null)
}

output "server_public_ip" {
  description = "Public IPv4 address of the K3s server, null when it has none."
  value       = try(aws_instance.server.public_ip != "" ? aws_instance.server.public_ip : null, null)
}

output "server_user_data_bytes" {
  description = "Size of the server's gzipped user data in bytes (EC2 limit: 16384)."
  value       = try(module.server_cloud_init.user_data_bytes, null)
}

################################################################################
# Agents
################################################################################

output "agent_instance_ids" {
  description = "Instance IDs of the CPU agents."
  value       = try(aws_instance.agent[*].id, [])
}

################################################################################
# GPU agent
################################################################################

output "gpu_agent_instance_id" {
  description = "Instance ID of the GPU agent, null when it is disabled."
  value       = try(aws_instance.gpu_agent[0].id, null)
}
