################################################################################
# VPC
################################################################################

output "vpc_id" {
  description = "ID of the VPC."
  value       = try(aws_vpc.this.id, null)
}

output "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  value       = try(aws_vpc.this.cidr_block, null)
}

output "azs" {
  description = "Availability zones of the subnets, in subnet order."
  value       = local.azs
}

################################################################################
# Public subnets
################################################################################

output "public_subnet_ids" {
  description = "IDs of the public subnets (route to the internet gateway), one per AZ."
  value       = try(aws_subnet.public[*].id, [])

  # Whatever launches here can reach the internet as soon as it boots.
  depends_on = [aws_route.public_internet, aws_route_table_association.public]
}

################################################################################
# Private subnets
################################################################################

output "private_subnet_ids" {
  description = "IDs of the private subnets, one per AZ."
  value       = try(aws_subnet.private[*].id, [])

  # Whatever launches here has its NAT route (if any) as soon as it boots.
  depends_on = [aws_route.private_nat, aws_route_table_association.private]
}

################################################################################
# NAT
################################################################################

output "private_subnets_have_egress" {
  description = "Whether the private subnets reach the internet through NAT (false when `nat_mode` is `none`)."
  value       = local.nat_count > 0
}

output "nat_public_ips" {
  description = "Public IPv4 addresses of the NAT gateways (the cluster's egress addresses)."
  value       = try(aws_eip.nat[*].public_ip, [])
}
