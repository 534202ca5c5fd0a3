"""The built-in AWS managed policies a store may attach by ARN (JSON documents).

`AdministratorAccess` and `PowerUserAccess` follow AWS's documents. `ReadOnlyAccess` is a stand-in:
AWS's document is far longer, so this one lists the read actions (`Describe*`, `Get*`, `List*`,
...) of about fifty common services, one service prefix at a time, since IAM refuses a wildcard
in a service prefix (`*:Get*`). Like AWS's, it leaves out `secretsmanager:GetSecretValue`. The
managed-policy catalogue issue replaces it with AWS's real document.

Built-ins are not read through the store, so the store's size check does not see them;
tests/unit/test_validate.py holds them to `MANAGED_POLICY_CHARS` instead.
"""
