################################################################################
# Cluster
################################################################################

variable "name" {
  description = "Prefix of every resource name, e.g. `gpu-analytics-aws`."
  type        = string
  default     = "gpu-analytics-aws"
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# K3s release and configuration
################################################################################

variable "k3s_version" {
  description = "K3s release installed on every node (INSTALL_K3S_VERSION)."
  type        = string
  default     = "v1.36.4+k3s1"
}

variable "installer_sha256" {
  description = "SHA-256 of install.sh at the `k3s_version` tag; nodes refuse a script that differs."
  type        = string
  default     = "46177d4c99440b4c0311b67233823a8e8a2fc09693f6c89af1a7161e152fbfad"
}

variable "flannel_backend" {
  description = "Flannel backend between nodes. Allowed values: `vxlan` (UDP 8472), `wireguard-native` (UDP 51820, encrypted). Must match the security module."
  type        = string
  default     = "vxlan"
}

variable "k3s_disable" {
  description = "Packaged K3s components not deployed (server `disable` flag); nothing is exposed outside the VPC, so Traefik is off by default."
  type        = list(string)
  default     = ["traefik"]
}

################################################################################
# Join token
################################################################################

variable "token_parameter_name" {
  description = "Name of the SSM SecureString parameter that holds the K3s join token."
  type        = string
  default     = "/gpu-analytics/k3s/token"
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the join token parameter; null uses the AWS managed key alias/aws/ssm."
  type        = string
  default     = null
}

################################################################################
# Network placement
################################################################################

variable "server_subnet_id" {
  description = "Subnet of the K3s server."
  type        = string
  default     = null
}

variable "server_public_ip" {
  description = "Give the server a public IPv4 address (needed to reach the K3s API from `api_allowed_cidrs` without a tunnel)."
  type        = bool
  default     = false
}

variable "agent_subnet_ids" {
  description = "Subnets the agents are spread over (round robin); the GPU agent uses the first."
  type        = list(string)
  default     = []
}

variable "agent_public_ip" {
  description = "Give agents public IPv4 addresses (only when their subnets have no NAT route)."
  type        = bool
  default     = false
}

variable "server_security_group_id" {
  description = "Security group of the server (from the security module)."
  type        = string
  default     = null
}

variable "agent_security_group_id" {
  description = "Security group of the agents and the GPU agent (from the security module)."
  type        = string
  default     = null
}

################################################################################
# Nodes
################################################################################

variable "ami_id" {
  description = "AMI of the server and CPU agents; null takes Canonical's current Ubuntu 24.04 amd64 image from its public SSM parameter."
  type        = string
  default     = null
}

variable "server" {
  description = "The K3s server (control plane with the embedded SQLite datastore; also runs workloads)."
  type = object({
    instance_type    = optional(string, "t3.large")
    root_volume_size = optional(number, 50)
  })
  default = {}
}

variable "agents" {
  description = "CPU agents: how many, their instance type and root volume size in GiB."
  type = object({
    count            = optional(number, 2)
    instance_type    = optional(string, "t3.large")
    root_volume_size = optional(number, 50)
  })
  default = {}
}

variable "gpu_agent" {
  description = "Optional GPU agent (g4dn or g5). `ami_id` null takes the AWS Deep Learning Base OSS NVIDIA Driver GPU AMI (Ubuntu 24.04), which ships the driver and the NVIDIA container toolkit. `taint` keeps non-GPU pods off it."
  type = object({
    enabled          = optional(bool, false)
    instance_type    = optional(string, "g4dn.xlarge")
    root_volume_size = optional(number, 120)
    ami_id           = optional(string)
    taint            = optional(bool, true)
  })
  default = {}
}

variable "imds_hop_limit" {
  description = "IMDSv2 response hop limit. 2 lets pods reach the node role: External Secrets' `aws-ssm` ClusterSecretStore has no other credentials. 1 confines the role to the host (External Secrets then cannot read SSM)."
  type        = number
  default     = 2
}

variable "detailed_monitoring" {
  description = "Enable 1-minute EC2 detailed monitoring (billed per instance; Prometheus already scrapes the nodes)."
  type        = bool
  default     = false
}

################################################################################
# Bootstrap manifests
################################################################################

variable "bootstrap_manifests" {
  description = "Manifests the server applies once through K3s's auto-deploy folder, in name order, before Argo CD takes them over from git: map of file name => content (the `bootstrap` AppProject, Argo CD's HelmChart, the root Application)."
  type        = map(string)
  default     = {}
}
