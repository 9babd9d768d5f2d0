################################################################################
# Security groups
################################################################################

resource "aws_security_group" "server" {
  name        = "${var.name}-k3s-server"
  description = "K3s server: API from agents and allow-listed CIDRs, node ports from nodes"
  vpc_id      = var.vpc_id

  tags = merge({ Name = "${var.name}-k3s-server" }, var.tags)
}

resource "aws_security_group" "agent" {
  name        = "${var.name}-k3s-agent"
  description = "K3s agents: node ports from nodes only"
  vpc_id      = var.vpc_id

  tags = merge({ Name = "${var.name}-k3s-agent" }, var.tags)
}

################################################################################
# K3s API
################################################################################

resource "aws_vpc_security_group_ingress_rule" "api_from_agents" {
  security_group_id            = aws_security_group.server.id
  description                  = "K3s supervisor and Kubernetes API from agents"
  referenced_security_group_id = aws_security_group.agent.id
  ip_protocol                  = "tcp"
  from_port                    = 6443
  to_port                      = 6443

  tags = merge({ Name = "k3s-api-from-agents" }, var.tags)
}

resource "aws_vpc_security_group_ingress_rule" "api_from_allowed" {
  for_each = toset(var.api_allowed_cidrs)

  security_group_id = aws_security_group.server.id
  description       = "Kubernetes API from an allow-listed CIDR"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 6443
  to_port           = 6443

  tags = merge({ Name = "k3s-api-from-${each.value}" }, var.tags)
}

################################################################################
# Node to node
################################################################################

locals {
  groups = {
    server = aws_security_group.server.id
    agent  = aws_security_group.agent.id
  }

  # Inbound rules between nodes (docs.k3s.io/installation/requirements#inbound-rules-for-k3s-nodes).
  # No 2379-2380: the single server keeps its state in SQLite, not embedded etcd.
  overlay_port = {
    vxlan = {
      name        = "flannel-vxlan"
      port        = 8472
      protocol    = "udp"
      description = "Flannel VXLAN overlay"
    }
    wireguard-native = {
      name        = "flannel-wireguard"
      port        = 51820
      protocol    = "udp"
      description = "Flannel WireGuard overlay (IPv4)"
    }
  }

  node_ports = concat(
    [
      {
        name        = "kubelet"
        port        = 10250
        protocol    = "tcp"
        description = "kubelet API (metrics-server, Prometheus)"
      },
      local.overlay_port[var.flannel_backend],
    ],
    var.extra_node_ports,
  )

  # [to, from]: one server, so no server-to-server traffic crosses the network.
  node_pairs = [["server", "agent"], ["agent", "server"], ["agent", "agent"]]

  node_rules = {
    for pair in setproduct(local.node_pairs, local.node_ports) :
    "${pair[0][0]}-from-${pair[0][1]}-${pair[1].name}" => {
      to          = pair[0][0]
      from        = pair[0][1]
      port        = pair[1].port
      protocol    = pair[1].protocol
      description = pair[1].description
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "node" {
  for_each = local.node_rules

  security_group_id            = local.groups[each.value.to]
  description                  = "${each.value.description} from ${each.value.from} nodes"
  referenced_security_group_id = local.groups[each.value.from]
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port

  tags = merge({ Name = each.key }, var.tags)
}

################################################################################
# Egress
################################################################################

locals {
  # Node egress: HTTPS (images, charts, AWS APIs, K3s releases), HTTP (Ubuntu package mirrors,
  # signed), anything to the other nodes. The VPC DNS resolver and the Amazon Time Sync
  # address are link-local and not filtered by security groups.
  egress_rules = merge(
    {
      for group in keys(local.groups) : "${group}-https" => {
        group       = group
        cidr        = "0.0.0.0/0"
        target      = null
        protocol    = "tcp"
        port        = 443
        description = "HTTPS: images, charts, AWS APIs, K3s releases"
      }
    },
    {
      for group in keys(local.groups) : "${group}-http" => {
        group       = group
        cidr        = "0.0.0.0/0"
        target      = null
        protocol    = "tcp"
        port        = 80
        description = "HTTP: Ubuntu package mirrors (signed packages)"
      }
    },
    {
      for pair in setproduct(keys(local.groups), keys(local.groups)) : "${pair[0]}-to-${pair[1]}" => {
        group       = pair[0]
        cidr        = null
        target      = pair[1]
        protocol    = "-1"
        port        = null
        description = "Any traffic to ${pair[1]} nodes (their inbound rules decide)"
      }
    },
  )
}

resource "aws_vpc_security_group_egress_rule" "node" {
  for_each = local.egress_rules

  security_group_id            = local.groups[each.value.group]
  description                  = each.value.description
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.target == null ? null : local.groups[each.value.target]
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.port
  to_port                      = each.value.port

  tags = merge({ Name = "egress-${each.key}" }, var.tags)
}
