terraform {
  # 1.10: S3 state locking without DynamoDB; 1.9: validations that refer to other variables.
  required_version = ">= 1.10"

  required_providers {
    # Pinned to the last 5.x line; the environments pin the exact release.
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
