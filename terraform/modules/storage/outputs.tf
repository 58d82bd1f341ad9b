output "bucket_name" {
  description = "renderfleet-{env}-media"
  value       = aws_s3_bucket.media.bucket
}

output "bucket_arn" {
  description = "ARN of the media bucket."
  value       = aws_s3_bucket.media.arn
}

output "table_name" {
  description = "renderfleet-{env}-jobs"
  value       = aws_dynamodb_table.jobs.name
}

output "table_arn" {
  description = "ARN of the jobs table (its indexes are table_arn/index/NAME)."
  value       = aws_dynamodb_table.jobs.arn
}
