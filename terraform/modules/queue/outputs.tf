output "queue_name" {
  description = "renderfleet-{env}-jobs"
  value       = aws_sqs_queue.jobs.name
}

output "queue_arn" {
  description = "ARN of the jobs queue."
  value       = aws_sqs_queue.jobs.arn
}

output "queue_url" {
  description = "URL of the jobs queue."
  value       = aws_sqs_queue.jobs.id
}

output "dlq_name" {
  description = "renderfleet-{env}-jobs-dlq"
  value       = aws_sqs_queue.dlq.name
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "max_receive_count" {
  description = "Deliveries before a message moves to the dead-letter queue (core::message::MAX_RECEIVE_COUNT)."
  value       = local.max_receive_count
}
