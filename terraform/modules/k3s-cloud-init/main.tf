################################################################################
# Node role and K3s release
################################################################################

locals {
  # install.sh from the release tag itself: the script is pinned with the binary and its
  # SHA-256 is checked on the node before it runs ("+" in the tag is URL-encoded).
  installer_url = "https://raw.githubusercontent.com/k3s-io/k3s/${urlencode(var.k3s_version)}/install.sh"
}

################################################################################
# Join token
################################################################################

locals {
  # The token never enters user data: the bootstrap script writes it here from SSM and
  # K3s reads it through `token-file` (docs.k3s.io/cli/server, --token-file).
  token_file = "/etc/rancher/k3s/token"
}

################################################################################
# K3s configuration
################################################################################

locals {
  # /etc/rancher/k3s/config.yaml: one key per CLI flag (docs.k3s.io/installation/configuration).
  k3s_config = merge(
    var.k3s_config,
    var.role == "agent" ? { server = var.server_url } : {},
    { "token-file" = local.token_file },
  )

  bootstrap_script = templatefile("${path.module}/templates/k3s-bootstrap.sh.tftpl", {
    role                   = var.role
    k3s_version            = var.k3s_version
    installer_url          = local.installer_url
    installer_sha256       = var.installer_sha256
    region                 = var.region
    token_parameter_name   = var.token_parameter_name
    token_file             = local.token_file
    require_nvidia_runtime = var.require_nvidia_runtime
    manifest_dir           = local.manifest_dir
    apply_once             = sort(var.apply_once)
    apply_once_timeout     = var.apply_once_timeout
  })
}

################################################################################
# Auto-deploy manifests
################################################################################

locals {
  # K3s applies every file in this folder, in name order, at each start and whenever it
  # changes, so the bootstrap manifests need no kubeconfig in Terraform. The `apply_once`
  # files get a `<name>.skip` from the bootstrap script once applied: K3s then leaves them
  # (and what they created) alone, and Argo CD keeps those objects in sync from git.
  manifest_dir = "/var/lib/rancher/k3s/server/manifests"

  manifest_files = [
    for name in sort(keys(var.manifests)) : {
      path        = "${local.manifest_dir}/${name}"
      permissions = "0600"
      content     = var.manifests[name]
    }
  ]
}

################################################################################
# Cloud-config
################################################################################

locals {
  files = concat(
    [
      {
        path        = "/usr/local/sbin/k3s-bootstrap"
        permissions = "0700"
        content     = local.bootstrap_script
      },
      {
        path        = "/etc/rancher/k3s/config.yaml"
        permissions = "0600"
        content     = yamlencode(local.k3s_config)
      },
    ],
    local.manifest_files,
  )

  cloud_config = templatefile("${path.module}/templates/cloud-config.yaml.tftpl", {
    role  = var.role
    files = local.files
  })

  # EC2 takes at most 16 KiB of user data; cloud-init inflates gzip by itself.
  user_data_base64  = base64gzip(local.cloud_config)
  user_data_padding = endswith(local.user_data_base64, "==") ? 2 : (endswith(local.user_data_base64, "=") ? 1 : 0)
  user_data_bytes   = floor(length(local.user_data_base64) * 3 / 4) - local.user_data_padding
}
