################################################################################
# Node role and K3s release
################################################################################

variable "role" {
  description = "K3s role of the node. Allowed values: `server`, `agent`."
  type        = string
  default     = "server"

  validation {
    condition     = contains(["server", "agent"], var.role)
    error_message = "role must be \"server\" or \"agent\"."
  }
}

variable "k3s_version" {
  description = "K3s release installed on the node (INSTALL_K3S_VERSION), e.g. `v1.36.4+k3s1`."
  type        = string
  default     = "v1.36.4+k3s1"

  # Values below land in single-quoted shell strings: only safe characters get through.
  validation {
    condition     = can(regex("^v1\\.[0-9]+\\.[0-9]+\\+k3s[0-9]+$", var.k3s_version))
    error_message = "k3s_version must be an exact K3s release such as v1.36.4+k3s1."
  }
}

variable "installer_sha256" {
  description = "SHA-256 of the K3s install.sh at the `k3s_version` tag; the node refuses to run a script that differs."
  type        = string
  default     = "46177d4c99440b4c0311b67233823a8e8a2fc09693f6c89af1a7161e152fbfad"

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.installer_sha256))
    error_message = "installer_sha256 must be 64 lowercase hex digits."
  }
}

################################################################################
# Join token
################################################################################

variable "region" {
  description = "AWS region of the SSM parameter that holds the join token."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "token_parameter_name" {
  description = "Name of the SSM SecureString parameter holding the K3s join token; read at boot through the instance role."
  type        = string
  default     = "/gpu-analytics/k3s/token"

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+$", var.token_parameter_name))
    error_message = "token_parameter_name must be an SSM parameter path such as /gpu-analytics/k3s/token."
  }
}

variable "server_url" {
  description = "URL of the K3s server that an agent joins, e.g. `https://10.40.10.5:6443`. Required when `role` is `agent`, ignored otherwise."
  type        = string
  default     = null
}

################################################################################
# K3s configuration
################################################################################

variable "k3s_config" {
  description = "Keys for /etc/rancher/k3s/config.yaml: K3s CLI flags without the leading dashes (node-label, node-taint, disable, flannel-backend, ...). `server` and `token-file` are set by this module."
  type        = any
  default     = {}
}

variable "require_nvidia_runtime" {
  description = "Fail the bootstrap unless nvidia-container-runtime is installed and K3s registered the `nvidia` containerd runtime (GPU agents)."
  type        = bool
  default     = false
}

################################################################################
# Auto-deploy manifests
################################################################################

variable "manifests" {
  description = "Files for K3s's auto-deploy folder (/var/lib/rancher/k3s/server/manifests), applied in name order: map of file name => content. Names are lowercase letters, digits and dashes plus `.yaml` (K3s names each AddOn after the part before the first dot). Server only."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.manifests) : can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?\\.ya?ml$", name))])
    error_message = "manifests takes file names such as 10-argo-cd.yaml: lowercase letters, digits and dashes, then .yaml or .yml."
  }
}

variable "apply_once" {
  description = "Names among `manifests` that K3s applies only until their objects exist: the bootstrap script then writes `<name>.skip` beside each, so a K3s restart no longer re-applies the install-time copy over what Argo CD syncs from git (docs.k3s.io/installation/packaged-components#using-skip-files). Server only."
  type        = list(string)
  default     = []

  # The names land in single-quoted shell strings: only safe characters get through.
  validation {
    condition     = alltrue([for name in var.apply_once : can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?\\.ya?ml$", name))])
    error_message = "apply_once takes file names from manifests, such as 10-argo-cd.yaml."
  }
}

variable "apply_once_timeout" {
  description = "Seconds the server's bootstrap waits for each `apply_once` manifest to be applied (the Argo CD objects wait for Argo CD's CRDs) before it fails."
  type        = number
  default     = 1800

  validation {
    condition     = var.apply_once_timeout >= 60 && floor(var.apply_once_timeout) == var.apply_once_timeout
    error_message = "apply_once_timeout must be a whole number of seconds, at least 60."
  }
}
