# One renderfleet environment: the eight modules wired together. Each environment under
# terraform/environments/ calls this module once with its values and configures the provider.
# The values every part must agree on (the group's bounds, slots, the visibility timeout, the wait
# SLO) are one variable each, handed to every module that uses them.

module "kms" {
  source      = "../kms"
  environment = var.environment
}

module "network" {
  source             = "../network"
  environment        = var.environment
  vpc_id             = var.vpc_id
  public_subnet_ids  = var.public_subnet_ids
  private_subnet_ids = var.private_subnet_ids
  kms_key_arn        = module.kms.key_arn
}

module "queue" {
  source                  = "../queue"
  environment             = var.environment
  kms_key_arn             = module.kms.key_arn
  visibility_timeout_secs = var.visibility_timeout_secs
}

module "storage" {
  source              = "../storage"
  environment         = var.environment
  bucket_name         = var.bucket_name
  kms_key_arn         = module.kms.key_arn
  output_expiry_days  = var.output_expiry_days
  deletion_protection = var.deletion_protection
}

module "job_server" {
  source              = "../job_server"
  environment         = var.environment
  vpc_id              = module.network.vpc_id
  public_subnet_ids   = module.network.public_subnet_ids
  private_subnet_ids  = module.network.private_subnet_ids
  certificate_arn     = var.certificate_arn
  image_tag           = var.job_server_image_tag
  kms_key_arn         = module.kms.key_arn
  table_arn           = module.storage.table_arn
  queue_arn           = module.queue.queue_arn
  dlq_arn             = module.queue.dlq_arn
  bucket_arn          = module.storage.bucket_arn
  bucket_name         = module.storage.bucket_name
  min_tasks           = var.job_server_min_tasks
  max_tasks           = var.job_server_max_tasks
  log_retention_days  = var.log_retention_days
  deletion_protection = var.deletion_protection
}

# The group and the scaler get their bounds, slots and the queue's visibility timeout from the
# same variables: the scaler plans for exactly the fleet the group allows.
module "render_fleet" {
  source                  = "../render_fleet"
  environment             = var.environment
  vpc_id                  = module.network.vpc_id
  private_subnet_ids      = module.network.private_subnet_ids
  min_workers             = var.min_workers
  max_workers             = var.max_workers
  slots_per_worker        = var.slots_per_worker
  visibility_timeout_secs = var.visibility_timeout_secs
  instance_types          = var.worker_instance_types
  spot                    = var.worker_spot
  warm_pool               = var.worker_warm_pool
  queue_arn               = module.queue.queue_arn
  table_arn               = module.storage.table_arn
  bucket_arn              = module.storage.bucket_arn
  bucket_name             = module.storage.bucket_name
  kms_key_arn             = module.kms.key_arn
}

module "scaler" {
  source      = "../scaler"
  environment = var.environment
  # path.root is the environment's folder (terraform/environments/ENV), so this is the
  # repository's target/lambda/scaler/bootstrap.zip, what scripts/build-lambda makes.
  lambda_zip_path    = coalesce(var.lambda_zip_path, "${path.root}/../../../target/lambda/scaler/bootstrap.zip")
  min_workers        = var.min_workers
  max_workers        = var.max_workers
  slots_per_worker   = var.slots_per_worker
  target_wait_secs   = var.target_wait_secs
  boot_secs          = var.boot_secs
  dry_run            = var.scaler_dry_run
  log_retention_days = var.log_retention_days
  table_arn          = module.storage.table_arn
  queue_arn          = module.queue.queue_arn
  kms_key_arn        = module.kms.key_arn

  # The scaler sizes a group that exists.
  depends_on = [module.render_fleet]
}

module "observability" {
  source               = "../observability"
  environment          = var.environment
  region               = var.region
  kms_key_arn          = module.kms.key_arn
  alarm_emails         = var.alarm_emails
  target_wait_secs     = var.target_wait_secs
  dlq_name             = module.queue.dlq_name
  scaler_function_name = module.scaler.function_name
  alb_arn_suffix       = module.job_server.alb_arn_suffix
}
