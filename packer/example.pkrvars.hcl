# Example variables for packer/ (copy, edit, pass with -var-file=).
agent_package  = "build/skiff-agent_0.1.0_amd64.deb"
prepull_images = ["registry.example.org:5000/ci/skiff-tools:1.0.0-bookworm"]
# trusted_keys_file = "keys/signers.jwks"

aws_region = "eu-west-1"

azure_subscription_id = "00000000-0000-0000-0000-000000000000"
azure_resource_group  = "skiff-images"

gcp_project_id = "my-project"
