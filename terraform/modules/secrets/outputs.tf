################################################################################
# Parameters
################################################################################

output "parameter_names" {
  description = "SSM parameter names, keyed by what they hold (e.g. `mongodb/app-password`)."
  value       = { for key, p in merge(aws_ssm_parameter.this, aws_ssm_parameter.given) : key => p.name }
}

output "parameter_arns" {
  description = "SSM parameter ARNs, keyed like `parameter_names`."
  value       = { for key, p in merge(aws_ssm_parameter.this, aws_ssm_parameter.given) : key => p.arn }
}

################################################################################
# External Secrets access
################################################################################

output "read_policy_arn" {
  description = "IAM policy that reads exactly these parameters (attached to the node role)."
  value       = try(aws_iam_policy.read.arn, null)
}
