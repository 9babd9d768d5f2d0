terraform {
  # Write-only arguments (value_wo) and ephemeral resources need Terraform 1.11+.
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.40"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.8"
    }
  }
}
