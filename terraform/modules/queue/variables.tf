variable "environment" {
  description = "Environment name, part of every resource name as core/src/names.rs derives them (modules/farm validates it)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts both queues (server-side encryption)."
  type        = string
}

variable "visibility_timeout_secs" {
  description = "The jobs queue's visibility timeout, seconds; modules/farm validates it and passes the same value to the render fleet as RENDERFLEET_VISIBILITY_SECS. The agent extends visibility every third of it and leases jobs for half of it."
  type        = number
  default     = 60
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
