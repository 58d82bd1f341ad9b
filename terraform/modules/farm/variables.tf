variable "environment" {
  description = "Environment name; part of every resource name (core/src/names.rs)."
  type        = string

  # Validated here, once, for every module: the same rule as ResourceNames::for_env (it becomes
  # part of an S3 bucket name).
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.environment))
    error_message = "environment must be 1-24 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the environment."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC; null creates a minimal one."
  type        = string
  default     = null
}

variable "public_subnet_ids" {
  description = "With vpc_id: subnets for the load balancer."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "With vpc_id: subnets for tasks and workers."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate for the API's HTTPS listener."
  type        = string
}

variable "job_server_image_tag" {
  description = "Tag of the job-server image pushed to the environment's ECR repository."
  type        = string
}

variable "job_server_min_tasks" {
  description = "Fewest job-server tasks."
  type        = number
  default     = 2
}

variable "job_server_max_tasks" {
  description = "Most job-server tasks."
  type        = number
  default     = 10
}

variable "min_workers" {
  description = "Fewest render workers: the group's min_size and the scaler's RENDERFLEET_MIN_WORKERS."
  type        = number
  default     = 0

  validation {
    condition     = var.min_workers >= 0 && floor(var.min_workers) == var.min_workers
    error_message = "min_workers must be a whole number, at least 0."
  }
}

variable "max_workers" {
  description = "Most render workers: the group's max_size and the scaler's RENDERFLEET_MAX_WORKERS."
  type        = number
  default     = 10

  validation {
    condition     = var.max_workers >= var.min_workers && var.max_workers >= 1 && floor(var.max_workers) == var.max_workers
    error_message = "max_workers must be a whole number, at least 1 and at least min_workers."
  }
}

variable "slots_per_worker" {
  description = "Jobs one worker renders at once: the agents' RENDERFLEET_SLOTS and the scaler's RENDERFLEET_SLOTS_PER_WORKER."
  type        = number
  default     = 1

  validation {
    condition     = var.slots_per_worker >= 1 && var.slots_per_worker <= 64
    error_message = "slots_per_worker must be 1 to 64 (the agent's limit)."
  }
}

variable "visibility_timeout_secs" {
  description = "The jobs queue's visibility timeout and the agents' RENDERFLEET_VISIBILITY_SECS."
  type        = number
  default     = 60

  validation {
    # The agent refuses less than 6 s (render-agent/src/config.rs); SQS allows at most 12 hours.
    condition     = var.visibility_timeout_secs >= 6 && var.visibility_timeout_secs <= 43200
    error_message = "visibility_timeout_secs must be 6 to 43200 (the agent refuses less than 6)."
  }
}

variable "target_wait_secs" {
  description = "The wait SLO: the scaler's RENDERFLEET_TARGET_WAIT_SECS and the oldest-wait alarm's threshold."
  type        = number
  default     = 30

  validation {
    condition     = var.target_wait_secs >= 0
    error_message = "target_wait_secs must be at least 0."
  }
}

variable "boot_secs" {
  description = "Worker boot time assumed until one is measured (RENDERFLEET_BOOT_SECS)."
  type        = number
  default     = 90
}

variable "scaler_dry_run" {
  description = "The scaler decides and reports but does not act."
  type        = bool
  default     = false
}

variable "worker_instance_types" {
  description = "Instance types for render workers, in order of preference."
  type        = list(string)
  default     = ["c6i.xlarge", "c6a.xlarge", "c5.xlarge"]
}

variable "worker_spot" {
  description = "Spot settings for workers; null for on-demand only."
  type = object({
    on_demand_base_capacity         = number
    on_demand_percentage_above_base = number
  })
  default = null
}

variable "worker_warm_pool" {
  description = "Warm pool of stopped workers; null for none."
  type = object({
    min_size     = number
    max_prepared = number
  })
  default = null
}

variable "output_expiry_days" {
  description = "Days rendered outputs are kept."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days the job server's and the scaler's logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts."
  }
}

variable "deletion_protection" {
  description = "Deletion protection on the jobs table and the load balancer."
  type        = bool
  default     = true
}

variable "alarm_emails" {
  description = "Addresses that receive the alarms."
  type        = list(string)
  default     = []
}

variable "lambda_zip_path" {
  description = "The scaler's zip; null takes target/lambda/scaler/bootstrap.zip in the repository (what scripts/build-lambda makes)."
  type        = string
  default     = null
}

variable "bucket_name" {
  description = "The media bucket's name; null for renderfleet-{env}-media-{account id} (S3 names are global)."
  type        = string
  default     = null
}
