################################################################################
# Cloud-config
################################################################################

output "cloud_config" {
  description = "The rendered #cloud-config document (plain text, no secrets)."
  value       = local.cloud_config
}

output "user_data_base64" {
  description = "The cloud-config, gzipped and base64-encoded, for `aws_instance.user_data_base64`."
  value       = local.user_data_base64

  precondition {
    condition     = local.user_data_bytes <= 16384
    error_message = "The gzipped user data is ${local.user_data_bytes} bytes; EC2 accepts at most 16384. Shrink the bootstrap manifests."
  }

  precondition {
    condition     = var.role == "server" || (var.server_url != null && length(var.manifests) == 0)
    error_message = "An agent needs server_url and takes no manifests (only the server has the auto-deploy folder)."
  }

  precondition {
    condition     = alltrue([for name in var.apply_once : contains(keys(var.manifests), name)])
    error_message = "apply_once names files that are not in manifests: ${join(", ", setsubtract(var.apply_once, keys(var.manifests)))}."
  }
}

output "user_data_bytes" {
  description = "Size of the gzipped user data in bytes (EC2 limit: 16384)."
  value       = local.user_data_bytes
}
