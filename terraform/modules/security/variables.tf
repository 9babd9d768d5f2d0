################################################################################
# Security groups
################################################################################

variable "name" {
  description = "Prefix of every resource name, e.g. `gpu-analytics-aws`."
  type        = string
  default     = "gpu-analytics-aws"
}

variable "vpc_id" {
  description = "VPC the security groups belong to."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# K3s API
################################################################################

variable "api_allowed_cidrs" {
  description = "IPv4 CIDRs allowed to reach the K3s API (TCP 6443) on the server, e.g. your address as `203.0.113.7/32`. Empty: the API is reachable only from the agents and through an SSM port-forwarding session."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for cidr in var.api_allowed_cidrs : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"
    ])
    error_message = "api_allowed_cidrs takes IPv4 CIDRs such as 203.0.113.7/32, and never 0.0.0.0/0."
  }
}

################################################################################
# Node to node
################################################################################

variable "flannel_backend" {
  description = "Flannel backend, which decides the overlay port. Allowed values: `vxlan` (UDP 8472), `wireguard-native` (UDP 51820)."
  type        = string
  default     = "vxlan"

  validation {
    condition     = contains(["vxlan", "wireguard-native"], var.flannel_backend)
    error_message = "flannel_backend must be \"vxlan\" or \"wireguard-native\"."
  }
}

variable "extra_node_ports" {
  description = "Ports opened between nodes on top of what K3s needs, for host-network pods (e.g. Prometheus node-exporter on TCP 9100). `protocol` is `tcp` or `udp`."
  type = list(object({
    name        = string
    port        = number
    protocol    = string
    description = string
  }))
  default = []

  validation {
    condition     = alltrue([for p in var.extra_node_ports : contains(["tcp", "udp"], p.protocol) && !contains([22, 2379, 2380, 6443], p.port)])
    error_message = "extra_node_ports takes tcp or udp ports; SSH, etcd and the K3s API have their own rules (or none)."
  }
}
