# prod: on-demand with a warm pool for fast scale-out (AWS allows a warm pool only without spot or
# mixed instance types), a year of logs, protected data.
#
# The whole environment is terraform/modules/farm, called once with this environment's values
# (edit them here); every environment passes the same arguments. backend.tf says where the state
# lives, versions.tf pins the provider, outputs.tf exports the farm's outputs.

locals {
  # The provider's tags and the farm get these from here, so they cannot disagree.
  environment = "prod"
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

  certificate_arn      = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-1111-1111-1111-111111111111"
  job_server_image_tag = "0.1.0"
  job_server_min_tasks = 2
  job_server_max_tasks = 10

  min_workers             = 1
  max_workers             = 200
  slots_per_worker        = 1
  visibility_timeout_secs = 60
  target_wait_secs        = 30
  boot_secs               = 90
  scaler_dry_run          = false

  worker_instance_types = ["c6i.xlarge", "c6a.xlarge", "c5.xlarge", "m6i.xlarge"]
  worker_spot           = null
  worker_warm_pool = {
    min_size     = 2
    max_prepared = 10
  }

  output_expiry_days  = 30
  log_retention_days  = 365
  deletion_protection = true
  alarm_emails        = ["oncall@example.com"]
}
