# Remote state: one S3 object per environment, locked with an S3 lock file (Terraform 1.10+; no
# DynamoDB table needed). The bucket is created once, by hand or by a bootstrap stack, with
# versioning and encryption on (see docs/DEPLOY.md). Backend blocks cannot use variables, so the
# names are written out; replace ACCOUNT_ID with yours.
terraform {
  backend "s3" {
    bucket       = "renderfleet-tfstate-ACCOUNT_ID"
    key          = "renderfleet/dev/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    use_lockfile = true
  }
}
