variable "environment" {
  description = "Environment name, part of every resource name as core/src/names.rs derives them (modules/farm validates it)."
  type        = string
}

variable "region" {
  description = "Region the dashboard's graphs read from (the environment's region)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the alarm topic."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm by email)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alarm_emails : can(regex("^[^@ ]+@[^@ ]+$", e))])
    error_message = "alarm_emails must be email addresses."
  }
}

variable "target_wait_secs" {
  description = "The wait SLO, seconds; modules/farm validates it and passes the value it gives the scaler as RENDERFLEET_TARGET_WAIT_SECS."
  type        = number
}

variable "slo_breach_minutes" {
  description = "Consecutive minutes over the SLO before the oldest-wait alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.slo_breach_minutes >= 1 && var.slo_breach_minutes <= 60
    error_message = "slo_breach_minutes must be 1 to 60."
  }
}

variable "agents_silent_minutes" {
  description = "Minutes during which some worker never had a fresh heartbeat before the alarm fires; above the boot time."
  type        = number
  default     = 15

  validation {
    condition     = var.agents_silent_minutes >= 5 && var.agents_silent_minutes <= 60
    error_message = "agents_silent_minutes must be 5 to 60."
  }
}

variable "job_server_5xx_threshold" {
  description = "Server errors in 5 minutes above which the job-server alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.job_server_5xx_threshold >= 0
    error_message = "job_server_5xx_threshold must be at least 0."
  }
}

variable "dlq_name" {
  description = "Name of the dead-letter queue."
  type        = string
}

variable "scaler_function_name" {
  description = "Name of the scaler Lambda."
  type        = string
}

variable "alb_arn_suffix" {
  description = "The job server's load balancer, as CloudWatch names it (LoadBalancer dimension)."
  type        = string
}
