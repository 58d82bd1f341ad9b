variable "environment" {
  description = "Environment name, part of every resource name as core/src/names.rs derives them (modules/farm validates it)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the load balancer and the tasks."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer (two zones at least)."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "An application load balancer needs subnets in at least two zones."
  }
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks; they need a route to the AWS APIs and ECR."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 1
    error_message = "Give at least one private subnet."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener (in the same region)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "image_tag" {
  description = "Tag of the job-server image in this module's ECR repository (tags are immutable: use a version or a commit)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a valid, immutable Docker tag (not latest)."
  }
}

variable "kms_key_arn" {
  description = "The environment's KMS key (table, queue, bucket, logs, images)."
  type        = string
}

variable "table_arn" {
  description = "ARN of the jobs table."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the jobs queue."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the jobs queue's dead-letter queue (the sweeper drains it)."
  type        = string
}

variable "bucket_name" {
  description = "Name of the media bucket (RENDERFLEET_BUCKET)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the media bucket."
  type        = string
}

variable "cpu" {
  description = "Fargate CPU units per task."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.cpu)
    error_message = "cpu must be 256, 512, 1024, 2048 or 4096."
  }
}

variable "memory" {
  description = "Fargate memory per task, MiB (must suit cpu)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= 512 && var.memory <= 30720
    error_message = "memory must be 512 to 30720 MiB."
  }
}

variable "min_tasks" {
  description = "Fewest tasks; two spread over zones survive a zone or a task loss."
  type        = number
  default     = 2

  validation {
    condition     = var.min_tasks >= 1
    error_message = "min_tasks must be at least 1."
  }
}

variable "max_tasks" {
  description = "Most tasks service autoscaling may run."
  type        = number
  default     = 10

  validation {
    condition     = var.max_tasks >= var.min_tasks
    error_message = "max_tasks must be at least min_tasks."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU the service autoscaling keeps the tasks at."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target_percent >= 10 && var.cpu_target_percent <= 90
    error_message = "cpu_target_percent must be 10 to 90."
  }
}

variable "requests_per_task_target" {
  description = "ALB requests per task per minute the service autoscaling aims at."
  type        = number
  default     = 6000

  validation {
    condition     = var.requests_per_task_target >= 1
    error_message = "requests_per_task_target must be positive."
  }
}

variable "request_timeout_secs" {
  description = "RENDERFLEET_REQUEST_TIMEOUT_SECS: per-request limit."
  type        = number
  default     = 10

  validation {
    condition     = var.request_timeout_secs >= 1 && var.request_timeout_secs < 60
    error_message = "request_timeout_secs must be 1 to 59 (below the ALB's 60 s idle timeout)."
  }
}

variable "drain_secs" {
  description = "RENDERFLEET_DRAIN_SECS: how long SIGTERM waits for requests in flight; the target group's deregistration delay and the container's stop timeout follow it."
  type        = number
  default     = 20

  validation {
    condition     = var.drain_secs >= 1 && var.drain_secs <= 110
    error_message = "drain_secs must be 1 to 110 (ECS allows a stop timeout of 120 s)."
  }
}

variable "output_url_ttl_secs" {
  description = "RENDERFLEET_OUTPUT_URL_TTL_SECS: lifetime of presigned output links."
  type        = number
  default     = 3600

  validation {
    condition     = var.output_url_ttl_secs >= 60 && var.output_url_ttl_secs <= 43200
    error_message = "output_url_ttl_secs must be 60 to 43200 (role credentials sign links valid for at most 12 hours)."
  }
}

variable "log_filter" {
  description = "RENDERFLEET_LOG: tracing filter, e.g. info or info,job_server=debug."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Days the job server's logs are kept; modules/farm validates the value."
  type        = number
  default     = 365
}

variable "internal" {
  description = "Make the load balancer internal (reachable only inside the VPC)."
  type        = bool
  default     = false
}

variable "ingress_cidrs" {
  description = "IPv4 ranges allowed to reach the load balancer on 80 (redirect) and 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.ingress_cidrs) > 0 && alltrue([for c in var.ingress_cidrs : can(cidrnetmask(c))])
    error_message = "ingress_cidrs must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancer."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "Existing bucket (SSE-S3, with the ELB log-delivery policy) for ALB access logs; null disables them."
  type        = string
  default     = null
}

variable "waf_acl_arn" {
  description = "WAFv2 web ACL to associate with the load balancer; null for none."
  type        = string
  default     = null
}
