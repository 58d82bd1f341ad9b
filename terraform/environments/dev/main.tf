# dev: small, cheap, scales to zero, easy to tear down.
#
# The whole environment is terraform/modules/farm, called once with this environment's values
# (edit them here); every environment passes the same arguments. backend.tf says where the state
# lives, versions.tf pins the provider, outputs.tf exports the farm's outputs.

locals {
  # The provider's tags and the farm get these from here, so they cannot disagree.
  environment = "dev"
  region      = "eu-west-1"
}

provider "aws" {
  region = local.region

  default_tags {
    tags = {
      Project     = "renderfleet"
      Environment = local.environment
      ManagedBy   = "terraform"
    }
  }
}

module "farm" {
  source      = "../../modules/farm"
  environment = local.environment
  region      = local.region

  certificate_arn      = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  job_server_image_tag = "0.1.0"
  job_server_min_tasks = 1
  job_server_max_tasks = 2

  min_workers             = 0
  max_workers             = 4
  slots_per_worker        = 1
  visibility_timeout_secs = 60
  target_wait_secs        = 30
  boot_secs               = 90
  scaler_dry_run          = false

  worker_instance_types = ["c6i.xlarge", "c6a.xlarge", "c5.xlarge"]
  worker_spot = {
    on_demand_base_capacity         = 0
    on_demand_percentage_above_base = 0
  }
  worker_warm_pool = null

  output_expiry_days  = 7
  log_retention_days  = 30
  deletion_protection = false
  alarm_emails        = []
}
