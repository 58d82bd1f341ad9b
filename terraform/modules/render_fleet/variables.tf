variable "environment" {
  description = "Environment name, part of every resource name as core/src/names.rs derives them (modules/farm validates it)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the workers."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets the group launches workers in; they need a route to the AWS APIs and Debian mirrors."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 1
    error_message = "Give at least one subnet."
  }
}

variable "min_workers" {
  description = "The group's min_size; modules/farm validates it and passes the same value to the scaler as RENDERFLEET_MIN_WORKERS."
  type        = number
  default     = 0
}

variable "max_workers" {
  description = "The group's max_size; modules/farm validates it and passes the same value to the scaler as RENDERFLEET_MAX_WORKERS."
  type        = number
  default     = 10
}

variable "slots_per_worker" {
  description = "RENDERFLEET_SLOTS: jobs one worker renders at once; modules/farm validates it and passes the same value to the scaler as RENDERFLEET_SLOTS_PER_WORKER."
  type        = number
  default     = 1
}

variable "visibility_timeout_secs" {
  description = "RENDERFLEET_VISIBILITY_SECS: must be the jobs queue's visibility timeout (modules/farm validates one value and passes it to both)."
  type        = number
  default     = 60
}

variable "heartbeat_secs" {
  description = "RENDERFLEET_HEARTBEAT_SECS: how often an agent reports to SSM. Keep it well under the scaler's heartbeat_stale_secs."
  type        = number
  default     = 10

  validation {
    condition     = var.heartbeat_secs >= 1 && var.heartbeat_secs <= 60
    error_message = "heartbeat_secs must be 1 to 60."
  }
}

variable "drain_grace_secs" {
  description = "RENDERFLEET_DRAIN_GRACE_SECS: how long running jobs may finish after SIGTERM before they are handed back."
  type        = number
  default     = 110

  validation {
    # The systemd unit kills the agent TimeoutStopSec=130 s after SIGTERM; spot gives 120 s.
    condition     = var.drain_grace_secs >= 0 && var.drain_grace_secs <= 120
    error_message = "drain_grace_secs must be 0 to 120 (the unit's stop timeout is 130 s, a spot notice 120 s)."
  }
}

variable "termination_hook_timeout_secs" {
  description = "How long a terminating worker may drain before the group terminates it anyway; above drain_grace_secs."
  type        = number
  default     = 300

  validation {
    condition     = var.termination_hook_timeout_secs >= 30 && var.termination_hook_timeout_secs <= 7200 && var.termination_hook_timeout_secs > var.drain_grace_secs
    error_message = "termination_hook_timeout_secs must be 30 to 7200 and above drain_grace_secs."
  }
}

variable "launch_hook_timeout_secs" {
  description = "How long a launching worker may take to boot and pass the agent's self-check (the agent completes the launch hook) before it is abandoned and replaced."
  type        = number
  default     = 600

  validation {
    condition     = var.launch_hook_timeout_secs >= 30 && var.launch_hook_timeout_secs <= 7200
    error_message = "launch_hook_timeout_secs must be 30 to 7200 (AWS's bounds)."
  }
}

variable "log_filter" {
  description = "RENDERFLEET_LOG: the agent's tracing filter."
  type        = string
  default     = "info"
}

variable "instance_types" {
  description = "Instance types the group may launch, in order of preference (x86_64: the agent is built for it). With slots_per_worker = 1, 4 to 8 vCPUs suit ffmpeg."
  type        = list(string)
  default     = ["c6i.xlarge", "c6a.xlarge", "c5.xlarge"]

  validation {
    condition     = length(var.instance_types) >= 1
    error_message = "Give at least one instance type."
  }
}

variable "spot" {
  description = "Spot settings; null runs on-demand only. With spot, capacity rebalancing is on and the agent drains on the interruption notice."
  type = object({
    on_demand_base_capacity         = number
    on_demand_percentage_above_base = number
  })
  default = null

  validation {
    condition     = var.spot == null || try(var.spot.on_demand_percentage_above_base >= 0 && var.spot.on_demand_percentage_above_base <= 100 && var.spot.on_demand_base_capacity >= 0, false)
    error_message = "spot.on_demand_percentage_above_base must be 0 to 100 and on_demand_base_capacity at least 0."
  }
}

variable "warm_pool" {
  description = "A warm pool of stopped, prepared workers (faster scale-out); null for none. Warm instances check themselves and park; they take work only once in service. AWS refuses a warm pool with spot or several instance types: the group then launches instance_types[0] on demand."
  type = object({
    min_size     = number
    max_prepared = number
  })
  default = null

  validation {
    condition     = var.warm_pool == null || try(var.warm_pool.min_size >= 0 && var.warm_pool.max_prepared >= var.warm_pool.min_size, false)
    error_message = "warm_pool.min_size must be at least 0 and max_prepared at least min_size."
  }

  validation {
    condition     = var.warm_pool == null || var.spot == null
    error_message = "warm_pool and spot cannot both be set: AWS's PutWarmPool refuses groups with a mixed instances policy or spot. Set spot = null to keep the warm pool, or warm_pool = null to keep spot."
  }
}

variable "ami_id" {
  description = "AMI of the workers (Debian or Ubuntu with cloud-init, curl 7.82+ and python3); null takes ami_ssm_parameter."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]+$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter holding the latest AMI id, used when ami_id is null."
  type        = string
  default     = "/aws/service/debian/release/12/latest/amd64"
}

variable "root_device_name" {
  description = "Root device of the AMI (Debian and Ubuntu: /dev/xvda or /dev/sda1)."
  type        = string
  default     = "/dev/xvda"
}

variable "root_volume_gb" {
  description = "Size of the encrypted root volume, GiB: the OS, ffmpeg, and every job's work directory (assets plus output)."
  type        = number
  default     = 40

  validation {
    condition     = var.root_volume_gb >= 8 && var.root_volume_gb <= 16384
    error_message = "root_volume_gb must be 8 to 16384."
  }
}

variable "queue_arn" {
  description = "ARN of the jobs queue."
  type        = string
}

variable "table_arn" {
  description = "ARN of the jobs table."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the media bucket."
  type        = string
}

variable "bucket_name" {
  description = "Name of the media bucket (the agent binary is downloaded from it)."
  type        = string
}

variable "agent_artifact_key" {
  description = "Key of the render-agent binary (x86_64 Linux) in the media bucket."
  type        = string
  default     = "releases/render-agent/render-agent"

  validation {
    condition     = startswith(var.agent_artifact_key, "releases/")
    error_message = "agent_artifact_key must be under releases/ (the lifecycle rules expire other prefixes)."
  }
}

variable "kms_key_arn" {
  description = "The environment's KMS key."
  type        = string
}
