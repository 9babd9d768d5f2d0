variable "region" {
  description = "AWS region for everything this root creates. External Secrets reads SSM in the region pinned by platform/external-secrets/aws-ssm-clustersecretstore.yaml (`spec.provider.aws.region`, eu-west-1): change both together; the plan fails while they differ. Prices in README.md are for eu-west-1."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Project name: prefix of resource names (`<name>-aws-...`). The SSM parameter names come from `parameter_path`."
  type        = string
  default     = "gpu-analytics"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name must be 3-30 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource (on top of Project, Cluster and ManagedBy)."
  type        = map(string)
  default     = {}
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (/16 to /20; each of the four subnets takes a /24)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = try(cidrnetmask(var.vpc_cidr) != "" && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20, false)
    error_message = "vpc_cidr must be an IPv4 CIDR between /16 and /20, e.g. 10.40.0.0/16."
  }
}

variable "azs" {
  description = "Two availability zones; empty takes the first two the region offers. Pick zones that offer the GPU instance type when the GPU agent is on."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.azs) == 0 || length(var.azs) == 2
    error_message = "azs takes exactly two zones, or none."
  }
}

variable "nat_mode" {
  description = "Egress of the private subnets. Allowed values: `single` (one NAT gateway, nodes private), `per_az` (one NAT gateway per AZ), `none` (no NAT gateway: nodes get public addresses, inbound stays closed). See README.md for the cost of each."
  type        = string
  default     = "single"

  validation {
    condition     = contains(["single", "per_az", "none"], var.nat_mode)
    error_message = "nat_mode must be \"single\", \"per_az\" or \"none\"."
  }
}

################################################################################
# Security groups
################################################################################

variable "api_allowed_cidrs" {
  description = "IPv4 CIDRs allowed to reach the K3s API (TCP 6443), e.g. [\"203.0.113.7/32\"]. Non-empty gives the server a public address. Empty: reach the API through an SSM port-forwarding session only (see outputs)."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for cidr in var.api_allowed_cidrs : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"
    ])
    error_message = "api_allowed_cidrs takes IPv4 CIDRs such as 203.0.113.7/32, and never 0.0.0.0/0."
  }
}

variable "flannel_backend" {
  description = "Pod network between nodes. Allowed values: `vxlan` (UDP 8472), `wireguard-native` (UDP 51820, encrypted between nodes)."
  type        = string
  default     = "vxlan"

  validation {
    condition     = contains(["vxlan", "wireguard-native"], var.flannel_backend)
    error_message = "flannel_backend must be \"vxlan\" or \"wireguard-native\"."
  }
}

################################################################################
# K3s cluster
################################################################################

variable "k3s_version" {
  description = "K3s release on every node (a tag of k3s-io/k3s, e.g. v1.36.4+k3s1). Changing it affects new nodes only; see README.md for upgrades."
  type        = string
  default     = "v1.36.4+k3s1"

  validation {
    condition     = can(regex("^v1\\.[0-9]+\\.[0-9]+\\+k3s[0-9]+$", var.k3s_version))
    error_message = "k3s_version must be an exact K3s release such as v1.36.4+k3s1 (no channels, no latest)."
  }
}

variable "k3s_installer_sha256" {
  description = "SHA-256 of install.sh at the k3s_version tag. Nodes refuse an installer that differs; update it with k3s_version."
  type        = string
  default     = "46177d4c99440b4c0311b67233823a8e8a2fc09693f6c89af1a7161e152fbfad"

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.k3s_installer_sha256))
    error_message = "k3s_installer_sha256 must be 64 lowercase hex digits."
  }
}

variable "k3s_disable" {
  description = "Packaged K3s components to leave out (server `disable` flag). Nothing is exposed outside the VPC, so Traefik is off."
  type        = list(string)
  default     = ["traefik"]
}

variable "ami_id" {
  description = "AMI of the server and CPU agents; null takes Canonical's current Ubuntu 24.04 LTS amd64 image (read once: nodes keep their image until replaced)."
  type        = string
  default     = null
}

variable "server" {
  description = "The K3s server (control plane on SQLite; it also runs workloads): instance type and root volume size in GiB."
  type = object({
    instance_type    = optional(string, "t3.large")
    root_volume_size = optional(number, 50)
  })
  default = {}

  validation {
    condition     = var.server.root_volume_size >= 20
    error_message = "server.root_volume_size must be at least 20 GiB."
  }
}

variable "agents" {
  description = "CPU agents: count (0-10), instance type, root volume size in GiB."
  type = object({
    count            = optional(number, 2)
    instance_type    = optional(string, "t3.large")
    root_volume_size = optional(number, 50)
  })
  default = {}

  validation {
    condition     = var.agents.count >= 0 && var.agents.count <= 10 && floor(var.agents.count) == var.agents.count
    error_message = "agents.count must be a whole number from 0 to 10."
  }

  validation {
    condition     = var.agents.root_volume_size >= 20
    error_message = "agents.root_volume_size must be at least 20 GiB."
  }
}

variable "gpu_agent" {
  description = "Optional GPU agent with the NVIDIA container runtime registered in K3s (RuntimeClass `nvidia`). instance_type: a g4dn or g5 size. ami_id null takes the AWS Deep Learning Base OSS NVIDIA Driver GPU AMI (Ubuntu 24.04). taint keeps non-GPU pods off the node."
  type = object({
    enabled          = optional(bool, false)
    instance_type    = optional(string, "g4dn.xlarge")
    root_volume_size = optional(number, 120)
    ami_id           = optional(string)
    taint            = optional(bool, true)
  })
  default = {}

  validation {
    condition     = can(regex("^(g4dn|g5)\\.[0-9]*x?large$", var.gpu_agent.instance_type))
    error_message = "gpu_agent.instance_type must be a g4dn or g5 size, e.g. g4dn.xlarge or g5.xlarge."
  }

  validation {
    condition     = var.gpu_agent.root_volume_size >= 100
    error_message = "gpu_agent.root_volume_size must be at least 100 GiB (the Deep Learning AMI's snapshot is large)."
  }
}

variable "imds_hop_limit" {
  description = "IMDSv2 response hop limit. Allowed values: 2 (pods reach the node role: External Secrets' `aws-ssm` ClusterSecretStore has no other credentials, as an account-specific role ARN cannot live in git; keep other pods off 169.254.169.254 with NetworkPolicies), 1 (host only: External Secrets then cannot read SSM)."
  type        = number
  default     = 2

  validation {
    condition     = contains([1, 2], var.imds_hop_limit)
    error_message = "imds_hop_limit must be 1 or 2."
  }
}

variable "detailed_monitoring" {
  description = "1-minute EC2 detailed monitoring (about 2.10 USD per instance-month; Prometheus already scrapes the nodes)."
  type        = bool
  default     = false
}

variable "bootstrap_manifests" {
  description = "Repo-relative paths of the manifests the server applies once, through K3s's auto-deploy folder, before `root_application`: the `bootstrap` AppProject the root Application runs in, and Argo CD's HelmChart. Their `- from-root-app` list items get the root Application's repoURL, as clusters/aws/kustomization.yaml does. Argo CD takes them over from git afterwards."
  type        = list(string)
  default     = ["bootstrap/projects/bootstrap-appproject.yaml", "bootstrap/argo-cd/helmchart.yaml"]

  validation {
    condition = length(var.bootstrap_manifests) > 0 && alltrue([
      for p in var.bootstrap_manifests : can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\\.ya?ml$", p)) && !strcontains(p, "..")
    ])
    error_message = "bootstrap_manifests takes repo-relative paths of .yaml files, without \"..\"."
  }
}

variable "root_application" {
  description = "Repo-relative path of the cluster's root Application (app of apps), applied once after `bootstrap_manifests`. Its `spec.source.repoURL` is the repository the cluster syncs from."
  type        = string
  default     = "clusters/aws/root-app.yaml"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\\.ya?ml$", var.root_application)) && !strcontains(var.root_application, "..")
    error_message = "root_application takes the repo-relative path of a .yaml file, without \"..\"."
  }
}

################################################################################
# Secrets
################################################################################

variable "parameter_path" {
  description = "SSM path of the secrets: `<parameter_path>/mongodb/root-password`, `/mongodb/app-password`, `/grafana/admin-password` (what the ExternalSecrets in git read as `remoteRef.key`: change them together) and `/k3s/token`."
  type        = string
  default     = "/gpu-analytics"

  validation {
    condition     = can(regex("^(/[A-Za-z0-9_.-]+)+$", var.parameter_path))
    error_message = "parameter_path must be an SSM path such as /gpu-analytics, without a trailing slash."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the SSM SecureString parameters; null uses the AWS managed key alias/aws/ssm (no extra cost)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "password_version" {
  description = "Bump to generate new MongoDB and Grafana passwords in SSM (rotation)."
  type        = number
  default     = 1

  validation {
    condition     = var.password_version >= 1 && floor(var.password_version) == var.password_version
    error_message = "password_version must be a whole number from 1 up."
  }
}

variable "alert_webhook_urls" {
  description = "Where Alertmanager posts alerts: `on-call` (critical) and `team` (warning) webhook URLs, and `on-call-slack` / `team-slack` Slack incoming webhooks (read with alertmanager-slack.yaml), stored in SSM for the cluster's ExternalSecret; never in the state."
  type        = map(string)
  default     = {}
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = alltrue([for key in keys(var.alert_webhook_urls) : contains(["on-call", "team", "on-call-slack", "team-slack"], key)])
    error_message = "alert_webhook_urls takes the keys on-call, team, on-call-slack and team-slack."
  }
}

variable "alert_webhook_version" {
  description = "Bump to store changed alert_webhook_urls (they are write-only)."
  type        = number
  default     = 1
}

################################################################################
# Outputs
################################################################################

variable "port_forward" {
  description = "Where the Argo CD and Grafana services live, for the port-forward commands in the outputs (namespaces and label selectors from bootstrap/ and apps/observability/)."
  type = object({
    argocd_namespace  = optional(string, "argocd")
    argocd_selector   = optional(string, "app.kubernetes.io/part-of=argocd,app.kubernetes.io/component=server")
    grafana_namespace = optional(string, "kube-prometheus-stack")
    grafana_selector  = optional(string, "app.kubernetes.io/name=grafana")
  })
  default = {}
}
