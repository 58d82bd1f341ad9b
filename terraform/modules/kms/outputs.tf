output "key_arn" {
  description = "ARN of the environment's customer-managed KMS key."
  value       = aws_kms_key.this.arn
}

output "key_alias" {
  description = "Alias of the key (alias/renderfleet-{env})."
  value       = aws_kms_alias.this.name
}
