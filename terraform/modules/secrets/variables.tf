################################################################################
# Parameters
################################################################################

variable "name" {
  description = "Prefix of the IAM policy name, e.g. `gpu-analytics-aws`."
  type        = string
  default     = "gpu-analytics-aws"
}

variable "parameter_prefix" {
  description = "Path the SSM parameters live under, without a trailing slash; the ExternalSecrets in git read `/gpu-analytics/...`."
  type        = string
  default     = "/gpu-analytics"
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the parameters; null uses the AWS managed key alias/aws/ssm."
  type        = string
  default     = null
}

variable "password_length" {
  description = "Length of each generated password (letters and digits only, so it needs no escaping in a MongoDB URI)."
  type        = number
  default     = 32
}

variable "password_version" {
  description = "Bump to generate and store new passwords (rotation); the pods pick them up when External Secrets next syncs."
  type        = number
  default     = 1
}

variable "alert_webhook_urls" {
  description = "Where Alertmanager posts alerts: `on-call` (critical) and `team` (warning) webhook URLs, and `on-call-slack` / `team-slack` Slack incoming webhooks (read with alertmanager-slack.yaml), stored as SSM SecureStrings."
  type        = map(string)
  default     = {}
  sensitive   = true
  ephemeral   = true
}

variable "alert_webhook_version" {
  description = "Bump to store changed alert_webhook_urls (the values are write-only)."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# External Secrets access
################################################################################

variable "node_role_name" {
  description = "IAM role of the K3s nodes; it gets the read policy, which External Secrets uses through the instance metadata."
  type        = string
  default     = null
}
