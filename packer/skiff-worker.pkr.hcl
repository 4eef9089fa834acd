# skiff worker VM images: Docker, the skiff agent and pre-pulled execution
# images baked into an image for AWS, Azure and GCP, plus a docker source
# that runs the same provisioning locally (and in the tests).
#
# Run from anywhere; paths are relative to this directory's parent:
#   packer build -var-file=my.pkrvars.hcl -only=amazon-ebs.worker packer/
#
# Written for Packer 1.6.6 (Debian 12's package, builders bundled): HCL2
# without "packer { required_plugins }" (1.7+), without variable
# validation blocks and without "imds_support"/"metadata_options".

locals {
  repo      = "${path.root}/.."
  stamp     = formatdate("YYYYMMDDhhmmss", timestamp())
  image     = "${var.image_name_prefix}-${local.stamp}"
  package   = basename(var.agent_package)
  prepull   = join(" ", var.prepull_images)
  keep      = join(",", var.prepull_images)
  stage_dir = "/tmp/skiff-provision"
  # run as root whether the communicator logs in as root (docker) or as a
  # sudoer (clouds)
  as_root = "if [ \"$(id -u)\" = 0 ]; then \"$@\"; else sudo -E \"$@\"; fi"
}

source "amazon-ebs" "worker" {
  region        = var.aws_region
  instance_type = var.aws_instance_type
  ssh_username  = var.aws_ssh_username
  ami_name      = local.image
  source_ami_filter {
    filters = {
      name                = var.aws_source_ami_name
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = [var.aws_source_ami_owner]
    most_recent = true
  }
  tags = {
    Name        = local.image
    "skiff:ami" = "worker"
  }
}

source "azure-arm" "worker" {
  use_azure_cli_auth                = var.azure_use_cli_auth
  subscription_id                   = var.azure_subscription_id
  location                          = var.azure_location
  vm_size                           = var.azure_vm_size
  os_type                           = "Linux"
  image_publisher                   = var.azure_image_publisher
  image_offer                       = var.azure_image_offer
  image_sku                         = var.azure_image_sku
  managed_image_name                = local.image
  managed_image_resource_group_name = var.azure_resource_group
  azure_tags = {
    "skiff-image" = "worker"
  }
}

source "googlecompute" "worker" {
  project_id              = var.gcp_project_id
  zone                    = var.gcp_zone
  machine_type            = var.gcp_machine_type
  source_image_family     = var.gcp_source_image_family
  source_image_project_id = [var.gcp_source_image_project_id]
  ssh_username            = "packer"
  image_name              = local.image
  image_family            = var.gcp_image_family
  image_labels = {
    skiff-image = "worker"
  }
}

source "docker" "worker" {
  image   = var.docker_base_image
  pull    = var.docker_pull
  commit  = true
  volumes = { (var.docker_socket) = "/var/run/docker.sock" }
  changes = [
    "LABEL dev.skiff.image=worker",
    "ENTRYPOINT []",
    "CMD [\"/bin/bash\"]",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  ]
}

# A local VM: the base disk from packer/qemu/make-base.sh (a debootstrap
# of Debian 12), booted with its kernel and initrd given to QEMU, no
# network but QEMU's user-mode link to this machine's loopback (Packer's
# SSH and nothing else when run in a network namespace, as
# packer/qemu/build.sh does). The output is a qcow2 of the root
# filesystem; boot it with the base's vmlinuz and initrd.img.
source "qemu" "worker" {
  iso_url          = "${var.qemu_base_dir}/rootfs.qcow2"
  iso_checksum     = "none"
  disk_image       = true
  use_backing_file = false
  skip_resize_disk = true
  format           = "qcow2"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  accelerator      = var.qemu_accelerator
  headless         = true
  vnc_bind_address = "127.0.0.1"
  memory           = var.qemu_memory
  cpus             = 2
  output_directory = var.qemu_output_dir
  vm_name          = "skiff-worker.qcow2"
  qemuargs = [
    ["-kernel", "${var.qemu_base_dir}/vmlinuz"],
    ["-initrd", "${var.qemu_base_dir}/initrd.img"],
    ["-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0"],
    ["-serial", "file:${var.qemu_output_dir}-console.log"],
  ]
  boot_wait            = "0s"
  communicator         = "ssh"
  ssh_username         = "root"
  ssh_private_key_file = "${var.qemu_base_dir}/build-key"
  ssh_host             = "127.0.0.1"
  ssh_timeout          = var.qemu_ssh_timeout
  shutdown_command     = "systemctl poweroff"
  shutdown_timeout     = "2m"
}

build {
  sources = [
    "source.amazon-ebs.worker",
    "source.azure-arm.worker",
    "source.googlecompute.worker",
    "source.docker.worker",
    "source.qemu.worker",
  ]

  provisioner "shell" {
    inline = ["mkdir -p ${local.stage_dir}/pkg"]
  }
  provisioner "file" {
    source      = "${local.repo}/provision/"
    destination = local.stage_dir
  }
  provisioner "file" {
    source      = var.agent_package
    destination = "${local.stage_dir}/pkg/${local.package}"
  }
  provisioner "file" {
    # an empty file stands for "no images to load"
    source      = var.image_archive == "" ? "${path.root}/no-keys.jwks" : var.image_archive
    destination = "${local.stage_dir}/images.tar"
  }
  provisioner "file" {
    # an empty file stands for "no keys to bake"
    source      = var.trusted_keys_file == "" ? "${path.root}/no-keys.jwks" : var.trusted_keys_file
    destination = "${local.stage_dir}/trusted.jwks"
  }

  # Docker from the distribution. The docker source uses the host's engine
  # through its socket instead: only the configuration is written.
  provisioner "shell" {
    environment_vars = ["SKIFF_DOCKER_SKIP_INSTALL=0"]
    inline           = ["set -e; as_root() { ${local.as_root}; }; as_root bash ${local.stage_dir}/install-docker.sh"]
    except           = ["docker.worker"]
  }
  provisioner "shell" {
    environment_vars = ["SKIFF_DOCKER_SKIP_INSTALL=1"]
    inline           = ["set -e; bash ${local.stage_dir}/install-docker.sh"]
    only             = ["docker.worker"]
  }

  # Debian's GCE images run google-guest-agent, not cloud-init: the
  # user-data templates need cloud-init.
  provisioner "shell" {
    inline = [
      "set -e; as_root() { ${local.as_root}; }",
      "as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cloud-init",
    ]
    only = ["googlecompute.worker"]
  }

  # The agent, its units and hooks, the skiff user; units stay disabled
  # until the user-data has written the configuration.
  provisioner "shell" {
    inline = [
      "set -e; as_root() { ${local.as_root}; }",
      "as_root bash ${local.stage_dir}/install-agent.sh ${local.stage_dir}/pkg/${local.package}",
      "if [ -s ${local.stage_dir}/trusted.jwks ]; then as_root install -m 0644 -o root -g root ${local.stage_dir}/trusted.jwks /etc/skiff/trusted.jwks; fi",
    ]
  }

  # Pre-pull the execution images through the Docker Engine API, and tell
  # the agent never to prune them.
  provisioner "shell" {
    environment_vars = ["PREPULL_IMAGES=${local.prepull}", "PREPULL_KEEP=${local.keep}", "PREPULL_ARCHIVE=${local.stage_dir}/images.tar"]
    inline = [
      "set -e; as_root() { ${local.as_root}; }",
      "as_root bash ${local.stage_dir}/prepull.sh",
    ]
  }

  # Leave no token, key, machine-id, host key or cloud-init state behind,
  # and check that nothing is left.
  provisioner "shell" {
    inline = [
      "set -e; as_root() { ${local.as_root}; }",
      "as_root bash ${local.stage_dir}/cleanup-image.sh",
      "as_root rm -rf ${local.stage_dir}",
    ]
  }

  # Azure: deprovision the VM agent's state and the build user last.
  provisioner "shell" {
    inline = ["if command -v waagent >/dev/null; then sudo /usr/sbin/waagent -force -deprovision+user; fi; export HISTSIZE=0; sync"]
    only   = ["azure-arm.worker"]
  }

  post-processor "docker-tag" {
    repository = var.docker_repository
    tags       = [var.docker_tag]
    only       = ["docker.worker"]
  }
}
