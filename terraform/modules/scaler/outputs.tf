output "function_name" {
  description = "renderfleet-{env}-scaler"
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the scaler function."
  value       = aws_lambda_function.this.arn
}

output "log_group_name" {
  description = "The scaler's log group (one decision per tick)."
  value       = aws_cloudwatch_log_group.this.name
}

output "role_arn" {
  description = "The scaler's role."
  value       = aws_iam_role.this.arn
}
