################################################################################
# Security groups
################################################################################

output "server_security_group_id" {
  description = "Security group of the K3s server."
  value       = try(aws_security_group.server.id, null)
}

output "agent_security_group_id" {
  description = "Security group of the K3s agents (CPU and GPU)."
  value       = try(aws_security_group.agent.id, null)
}

################################################################################
# Node to node
################################################################################

output "node_ports" {
  description = "Ports open between nodes: name, port, protocol."
  value       = [for p in local.node_ports : { name = p.name, port = p.port, protocol = p.protocol }]
}
