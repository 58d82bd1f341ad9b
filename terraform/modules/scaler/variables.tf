variable "environment" {
  description = "Environment name, part of every resource name as core/src/names.rs derives them (modules/farm validates it)."
  type        = string
}

variable "lambda_zip_path" {
  description = "The Lambda zip scripts/build-lambda makes (bootstrap inside). The environments default to the repository's target/lambda/scaler/bootstrap.zip."
  type        = string

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must name a .zip file."
  }
}

variable "memory_mb" {
  description = "Lambda memory, MiB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be 128 to 10240."
  }
}

variable "enabled" {
  description = "Run the schedule and the lifecycle rule (false stops all scaling; the group keeps its size)."
  type        = bool
  default     = true
}

variable "min_workers" {
  description = "RENDERFLEET_MIN_WORKERS: modules/farm validates it and passes the value it gives the group's min_size."
  type        = number
}

variable "max_workers" {
  description = "RENDERFLEET_MAX_WORKERS: modules/farm validates it and passes the value it gives the group's max_size."
  type        = number
}

variable "slots_per_worker" {
  description = "RENDERFLEET_SLOTS_PER_WORKER: modules/farm validates it and passes the value it gives the agents as RENDERFLEET_SLOTS."
  type        = number
}

variable "target_wait_secs" {
  description = "RENDERFLEET_TARGET_WAIT_SECS: the wait SLO; modules/farm validates it and passes the same value to the oldest-wait alarm."
  type        = number
  default     = 30
}

variable "boot_secs" {
  description = "RENDERFLEET_BOOT_SECS: boot time assumed until one is measured."
  type        = number
  default     = 90

  validation {
    condition     = var.boot_secs >= 0
    error_message = "boot_secs must be at least 0."
  }
}

variable "tick_secs" {
  description = "RENDERFLEET_TICK_SECS: seconds between ticks inside one scheduled invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.tick_secs >= 1 && var.tick_secs <= 30
    error_message = "tick_secs must be 1 to 30 (several ticks must fit in the minute an invocation covers)."
  }
}

variable "scale_in_window_secs" {
  description = "RENDERFLEET_SCALE_IN_WINDOW_SECS: stabilisation window for shrinking."
  type        = number
  default     = 60

  validation {
    condition     = var.scale_in_window_secs >= 0
    error_message = "scale_in_window_secs must be at least 0."
  }
}

variable "worker_idle_secs" {
  description = "RENDERFLEET_WORKER_IDLE_SECS: idle seconds before a worker is retired; null uses the measured boot time."
  type        = number
  default     = null

  validation {
    condition     = var.worker_idle_secs == null || try(var.worker_idle_secs >= 0, false)
    error_message = "worker_idle_secs must be null or at least 0."
  }
}

variable "idle_to_zero_secs" {
  description = "RENDERFLEET_IDLE_TO_ZERO_SECS: seconds without work before the last worker goes."
  type        = number
  default     = 60

  validation {
    condition     = var.idle_to_zero_secs >= 0
    error_message = "idle_to_zero_secs must be at least 0."
  }
}

variable "min_billed_secs" {
  description = "RENDERFLEET_MIN_BILLED_SECS: a worker younger than this is kept (it is billed anyway)."
  type        = number
  default     = 60

  validation {
    condition     = var.min_billed_secs >= 0
    error_message = "min_billed_secs must be at least 0."
  }
}

variable "max_step_up" {
  description = "RENDERFLEET_MAX_STEP_UP: most workers launched in one decision."
  type        = number
  default     = 50

  validation {
    condition     = var.max_step_up >= 1
    error_message = "max_step_up must be at least 1."
  }
}

variable "max_step_down" {
  description = "RENDERFLEET_MAX_STEP_DOWN: most workers retired in one decision."
  type        = number
  default     = 10

  validation {
    condition     = var.max_step_down >= 0
    error_message = "max_step_down must be at least 0."
  }
}

variable "dry_run" {
  description = "RENDERFLEET_DRY_RUN: decide and report, but do not act."
  type        = bool
  default     = false
}

variable "seconds_per_unit" {
  description = "RENDERFLEET_SECONDS_PER_UNIT: render seconds per work unit until agents have measured it."
  type        = number
  default     = 1

  validation {
    condition     = var.seconds_per_unit > 0
    error_message = "seconds_per_unit must be positive."
  }
}

variable "heartbeat_stale_secs" {
  description = "RENDERFLEET_HEARTBEAT_STALE_SECS: a heartbeat older than this no longer counts (agents report every heartbeat_secs)."
  type        = number
  default     = 45

  validation {
    condition     = var.heartbeat_stale_secs >= 5
    error_message = "heartbeat_stale_secs must be at least 5."
  }
}

variable "unhealthy_grace_secs" {
  description = "RENDERFLEET_UNHEALTHY_GRACE_SECS: a worker whose agent reports unhealthy (its self-check fails) is replaced once it is older than this."
  type        = number
  default     = 120

  validation {
    condition     = var.unhealthy_grace_secs >= 30
    error_message = "unhealthy_grace_secs must be at least 30 (the agent retries its self-check every 30 s)."
  }
}

variable "boot_timeout_secs" {
  description = "RENDERFLEET_BOOT_TIMEOUT_SECS: an in-service worker silent this long is replaced."
  type        = number
  default     = 600

  validation {
    condition     = var.boot_timeout_secs >= 60
    error_message = "boot_timeout_secs must be at least 60 (installing ffmpeg takes a while)."
  }
}

variable "decision_ttl_hours" {
  description = "RENDERFLEET_DECISION_TTL_HOURS: how long decisions stay in the table's history."
  type        = number
  default     = 72

  validation {
    condition     = var.decision_ttl_hours >= 1
    error_message = "decision_ttl_hours must be at least 1."
  }
}

variable "log_filter" {
  description = "RENDERFLEET_LOG: the scaler's tracing filter."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Days the scaler's logs (one decision line per tick) are kept; modules/farm validates the value."
  type        = number
  default     = 90
}

variable "table_arn" {
  description = "ARN of the jobs table."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the jobs queue."
  type        = string
}

variable "kms_key_arn" {
  description = "The environment's KMS key (logs and the function's environment)."
  type        = string
}
