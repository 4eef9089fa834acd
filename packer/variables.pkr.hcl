# Variables of the skiff worker image. Every cloud's variables have
# defaults except what only you know (project, subscription, ...): set them
# in a .pkrvars.hcl file (example.pkrvars.hcl shows all of them).

variable "agent_package" {
  type        = string
  description = "Path of the skiff .deb (or .tar.gz) to install, as built by 'cmake --build build --target package'."
}

variable "prepull_images" {
  type        = list(string)
  default     = []
  description = "Execution images pulled into the VM image by 'skiff-agent prepull', so that a first job does not wait for a pull. Never pruned by the agent."
}

variable "image_archive" {
  type        = string
  default     = ""
  description = "Optional: an image archive (docker save) loaded into the image's engine before the pre-pull, for builds without a registry (the qemu source has no network). Its images must be listed in prepull_images too."
}

variable "trusted_keys_file" {
  type        = string
  default     = ""
  description = "Optional: a public JWKS of job-signing keys to bake in as /etc/skiff/trusted.jwks (user-data may still replace it)."
}

variable "image_name_prefix" {
  type    = string
  default = "skiff-worker"
}

# ---- AWS (amazon-ebs) ----
variable "aws_region" {
  type    = string
  default = "eu-west-1"
}
variable "aws_instance_type" {
  type    = string
  default = "t3.small"
}
variable "aws_source_ami_name" {
  type        = string
  default     = "debian-12-amd64-*"
  description = "Name filter of the base AMI; the newest match is used."
}
variable "aws_source_ami_owner" {
  type        = string
  default     = "136693071363"
  description = "Owner of the base AMI (136693071363: Debian's cloud team)."
}
variable "aws_ssh_username" {
  type    = string
  default = "admin"
}

# ---- Azure (azure-arm) ----
variable "azure_subscription_id" {
  type    = string
  default = ""
}
variable "azure_use_cli_auth" {
  type        = bool
  default     = true
  description = "Authenticate with the az CLI's login of the person or CI running packer (the built VM needs no CLI)."
}
variable "azure_resource_group" {
  type        = string
  default     = "skiff-images"
  description = "Resource group that receives the managed image."
}
variable "azure_location" {
  type    = string
  default = "westeurope"
}
variable "azure_vm_size" {
  type    = string
  default = "Standard_B2s"
}
variable "azure_image_publisher" {
  type    = string
  default = "Debian"
}
variable "azure_image_offer" {
  type    = string
  default = "debian-12"
}
variable "azure_image_sku" {
  type    = string
  default = "12-gen2"
}

# ---- GCP (googlecompute) ----
variable "gcp_project_id" {
  type    = string
  default = ""
}
variable "gcp_zone" {
  type    = string
  default = "europe-west1-b"
}
variable "gcp_machine_type" {
  type    = string
  default = "e2-small"
}
variable "gcp_source_image_family" {
  type    = string
  default = "debian-12"
}
variable "gcp_source_image_project_id" {
  type    = string
  default = "debian-cloud"
}
variable "gcp_image_family" {
  type    = string
  default = "skiff-worker"
}

# ---- Docker (local builds and tests) ----
variable "docker_base_image" {
  type        = string
  default     = "debian:bookworm"
  description = "Base image of the docker source; the tests pass a local debootstrap import."
}
variable "docker_pull" {
  type        = bool
  default     = true
  description = "Pull docker_base_image first; false for a local-only base."
}
variable "docker_socket" {
  type        = string
  default     = "/var/run/docker.sock"
  description = "The host's Docker socket, mounted into the build container: the docker source uses the host's engine (it cannot run one of its own unprivileged), so pre-pulled images land there."
}
variable "docker_repository" {
  type    = string
  default = "skiff/worker"
}
variable "docker_tag" {
  type    = string
  default = "latest"
}

# ---- QEMU (a local VM; packer/qemu/build.sh) ----
variable "qemu_base_dir" {
  type        = string
  default     = "/var/tmp/skiff-qemu-base"
  description = "Directory made by packer/qemu/make-base.sh: rootfs.qcow2, vmlinuz, initrd.img, build-key."
}
variable "qemu_output_dir" {
  type    = string
  default = "output-qemu"
}
variable "qemu_accelerator" {
  type        = string
  default     = "kvm"
  description = "kvm where /dev/kvm works, tcg (emulation, several times slower) elsewhere."
}
variable "qemu_memory" {
  type    = number
  default = 1024
}
variable "qemu_ssh_timeout" {
  type    = string
  default = "5m"
}
