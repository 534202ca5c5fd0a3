"""The built-in AWS managed policies a store may attach by ARN: AWS's own default versions.

Each `<Name>.json` is what `aws iam get-policy-version` prints for the policy's default version
(`PolicyVersion`: `Document`, `VersionId`, `IsDefaultVersion`, `CreateDate`), with our `pdp` key
beside it: the ARN (path included), the AWS Managed Policy Reference page, where the text was
copied from, and whether it is a narrower stand-in (none is: every built-in is AWS's full
document). `scripts/managed_builtins.py` writes them; `tests/unit/test_managed.py` pins each
one's version, date and document hash. Read by `pdp.store.aws_managed.builtin_managed`; the
customer-managed size limit does not apply to them (AWS's own ReadOnlyAccess is ~90 KB).
"""
