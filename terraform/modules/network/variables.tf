################################################################################
# VPC
################################################################################

variable "name" {
  description = "Prefix of every resource name, e.g. `gpu-analytics-aws`."
  type        = string
  default     = "gpu-analytics-aws"
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC; each subnet takes a /24 of it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "azs" {
  description = "Two availability zones; empty takes the first two the region offers."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# NAT
################################################################################

variable "nat_mode" {
  description = "Egress of the private subnets. Allowed values: `single` (one NAT gateway, ~33 USD/month + 0.045 USD/GB), `per_az` (one per AZ, survives an AZ outage, twice that), `none` (no NAT: no private egress; put nodes in the public subnets)."
  type        = string
  default     = "single"

  validation {
    condition     = contains(["single", "per_az", "none"], var.nat_mode)
    error_message = "nat_mode must be \"single\", \"per_az\" or \"none\"."
  }
}
