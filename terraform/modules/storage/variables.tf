variable "environment" {
  description = "Environment name, part of every resource name as core/src/names.rs derives them (modules/farm validates it)."
  type        = string
}

variable "bucket_name" {
  description = "The media bucket's name; null for renderfleet-{env}-media-{account id}. S3 names are global: pick one no other account holds."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the bucket's objects and the table."
  type        = string
}

variable "output_expiry_days" {
  description = "Days a rendered output (outputs/...) is kept before S3 deletes it."
  type        = number
  default     = 30

  validation {
    condition     = var.output_expiry_days >= 1
    error_message = "output_expiry_days must be at least 1."
  }
}

variable "asset_expiry_days" {
  description = "Days an uploaded asset (assets/...) is kept; null keeps assets until deleted."
  type        = number
  default     = null

  validation {
    condition     = var.asset_expiry_days == null || try(var.asset_expiry_days >= 1, false)
    error_message = "asset_expiry_days must be null or at least 1."
  }
}

variable "access_log_bucket" {
  description = "Name of an existing bucket for S3 server access logs; null disables them."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the jobs table (turn off only to tear an environment down)."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let terraform destroy delete a non-empty media bucket. Leave false outside throwaway environments."
  type        = bool
  default     = false
}
