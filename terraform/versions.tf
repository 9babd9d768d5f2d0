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

  # Local state by default. For a team, keep state in S3 with S3-native locking (Terraform
  # 1.10+: a .tflock object next to the state, no DynamoDB table). Create the bucket first
  # (versioning on, public access blocked, default encryption), uncomment, then run
  # `terraform init -migrate-state`:
  #
  # backend "s3" {
  #   bucket       = "my-terraform-state-bucket"
  #   key          = "gpu-analytics/aws/terraform.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}
