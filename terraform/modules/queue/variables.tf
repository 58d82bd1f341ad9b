variable "environment" {
  description = "Environment name (dev, prod, ...). It is part of every resource name, exactly as core/src/names.rs derives them."
  type        = string

  validation {
    # The same rule as ResourceNames::for_env: it becomes part of an S3 bucket name.
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.environment))
    error_message = "environment must be 1-24 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts both queues (server-side encryption)."
  type        = string
}

variable "visibility_timeout_secs" {
  description = "The jobs queue's visibility timeout, seconds. The root passes the same value to the render fleet as RENDERFLEET_VISIBILITY_SECS; the agent extends visibility every third of it and leases jobs for half of it."
  type        = number
  default     = 60

  validation {
    # The agent refuses less than 6 s (render-agent/src/config.rs); SQS allows at most 12 hours.
    condition     = var.visibility_timeout_secs >= 6 && var.visibility_timeout_secs <= 43200
    error_message = "visibility_timeout_secs must be 6 to 43200 (the agent refuses less than 6)."
  }
}

variable "message_retention_secs" {
  description = "How long an unreceived job message is kept, seconds. The job server's sweeper re-sends messages for queued jobs, so this bounds only an outage of every agent."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_secs >= 3600 && var.message_retention_secs <= 1209600
    error_message = "message_retention_secs must be 3600 to 1209600."
  }
}
