terraform {
  # 1.10: S3 state locking without DynamoDB; 1.9: validations that refer to other variables.
  required_version = ">= 1.10"

  # The eight modules it calls declare no provider requirements of their own: they inherit this
  # one (hashicorp/aws). The environments pin the exact release.
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
