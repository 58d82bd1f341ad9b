variable "environment" {
  description = "Environment name, part of every resource name as core/src/names.rs derives them (modules/farm validates it)."
  type        = string
}

variable "vpc_id" {
  description = "An existing VPC to use. When null (the default), the module creates a minimal VPC."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "public_subnet_ids" {
  description = "With vpc_id: subnets for the load balancer (at least two zones)."
  type        = list(string)
  default     = []

  validation {
    condition     = var.vpc_id == null || length(var.public_subnet_ids) >= 2
    error_message = "With vpc_id, give at least two public subnets (an ALB needs two zones)."
  }
}

variable "private_subnet_ids" {
  description = "With vpc_id: subnets for the job server's tasks and the workers; they need a route to the AWS APIs (NAT or endpoints)."
  type        = list(string)
  default     = []

  validation {
    condition     = var.vpc_id == null || length(var.private_subnet_ids) >= 1
    error_message = "With vpc_id, give at least one private subnet."
  }
}

variable "cidr_block" {
  description = "CIDR block of the created VPC (ignored with vpc_id). Subnets are /20s of a /16."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be a CIDR block such as 10.42.0.0/16."
  }
}

variable "az_count" {
  description = "Availability zones the created VPC spans (ignored with vpc_id)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be 2 to 4 (an ALB needs two zones)."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow-log group."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Days the created VPC's flow logs (rejected traffic) are kept."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}
