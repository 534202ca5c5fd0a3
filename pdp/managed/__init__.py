"""The built-in AWS managed policies a store may attach by ARN (JSON documents)."""
