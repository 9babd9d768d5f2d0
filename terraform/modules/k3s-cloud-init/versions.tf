terraform {
  # Provider-free on purpose: tests/terraform renders this module offline with
  # `terraform init` + `terraform apply` on a configuration that only has outputs.
  required_version = "~> 1.11"
}
