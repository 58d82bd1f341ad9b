variable "environment" {
  description = "Environment name (dev, prod, ...). It is part of every resource name, exactly as core/src/names.rs derives them."
  type        = string

  validation {
    # The same rule as ResourceNames::for_env: it becomes part of an S3 bucket name.
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.environment))
    error_message = "environment must be 1-24 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "deletion_window_days" {
  description = "Days a scheduled key deletion waits before the key is gone (and with it every encrypted byte)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_days >= 7 && var.deletion_window_days <= 30
    error_message = "deletion_window_days must be 7 to 30."
  }
}
