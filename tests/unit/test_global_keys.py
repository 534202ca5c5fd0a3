"""AWS's global condition keys through `pdp validate`: each key of the IAM User Guide's "AWS
global condition context keys" (and the cross-service keys it lists) with an operator of its
data type raises no finding; names ignore case; tag keys take any tag key after the slash.

A false INVALID_GLOBAL_CONDITION_KEY or TYPE_MISMATCH on a correct policy is the bug these
guard against: every row is a condition AWS documents or writes itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main

# (operator, key, value): the key's data type on the page decides the operator family
CORRECT: list[tuple[str, str, str]] = [
    # Properties of the principal
    ("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/admin"),
    ("StringLike", "aws:PrincipalArn", "arn:aws:iam::*:root"),  # ARN keys take String too
    ("StringEquals", "aws:PrincipalAccount", "111122223333"),
    ("ForAnyValue:StringLike", "aws:PrincipalOrgPaths", "o-a1b2c3d4e5/r-ab12/ou-ab12-*"),
    ("StringEquals", "aws:PrincipalOrgID", "o-a1b2c3d4e5"),
    ("StringEquals", "aws:PrincipalTag/team", "blue"),
    ("Bool", "aws:PrincipalIsAWSService", "true"),
    ("StringEquals", "aws:PrincipalServiceName", "cloudtrail.amazonaws.com"),
    ("ForAnyValue:StringEquals", "aws:PrincipalServiceNamesList", "ec2.amazonaws.com"),
    ("StringEquals", "aws:PrincipalType", "User"),
    ("StringLike", "aws:userid", "AIDA*"),
    ("StringEquals", "aws:username", "alice"),
    # Properties of a role session
    ("StringEquals", "aws:AssumedRoot", "true"),
    ("Null", "aws:AssumedRoot", "true"),  # AWS's SCP example for centralized root access
    ("StringEquals", "aws:FederatedProvider", "arn:aws:iam::111122223333:oidc-provider/x"),
    ("DateGreaterThan", "aws:TokenIssueTime", "2020-01-01T00:00:00Z"),
    ("NumericLessThan", "aws:MultiFactorAuthAge", "3600"),
    ("BoolIfExists", "aws:MultiFactorAuthPresent", "false"),
    ("ArnEquals", "aws:ChatbotSourceArn", "arn:aws:chatbot::111122223333:chat-configuration/x"),
    ("StringEquals", "aws:Ec2InstanceSourceVpc", "vpc-1a2b3c4d"),
    ("IpAddress", "aws:Ec2InstanceSourcePrivateIPv4", "10.0.0.0/8"),
    ("StringLike", "aws:SourceIdentity", "alice-*"),
    ("NumericGreaterThanEquals", "ec2:RoleDelivery", "2.0"),
    ("ArnEquals", "ec2:SourceInstanceArn", "arn:aws:ec2:us-east-1:111122223333:instance/i-1"),
    ("StringEquals", "glue:RoleAssumedBy", "glue.amazonaws.com"),
    ("StringEquals", "glue:CredentialIssuingService", "glue.amazonaws.com"),
    ("ArnLike", "lambda:SourceFunctionArn", "arn:aws:lambda:*:111122223333:function:f"),
    ("ArnLike", "ssm:SourceInstanceArn", "arn:aws:ec2:*:111122223333:instance/*"),
    ("StringEquals", "identitystore:UserId", "user-1"),
    # Properties of the network
    ("IpAddress", "aws:SourceIp", "203.0.113.0/24"),
    ("StringEquals", "aws:SourceVpc", "vpc-1a2b3c4d"),
    ("ArnLike", "aws:SourceVpcArn", "arn:aws:ec2:*:111122223333:vpc/*"),
    ("StringEquals", "aws:SourceVpce", "vpce-1a2b3c4d"),
    ("StringEquals", "aws:VpceAccount", "111122223333"),
    ("ForAnyValue:StringLike", "aws:VpceOrgPaths", "o-a1b2c3d4e5/*"),
    ("StringEquals", "aws:VpceOrgID", "o-a1b2c3d4e5"),
    ("NotIpAddressIfExists", "aws:VpcSourceIp", "10.0.0.0/16"),
    # Properties of the resource
    ("StringEquals", "aws:ResourceAccount", "111122223333"),
    ("ForAnyValue:StringLike", "aws:ResourceOrgPaths", "o-a1b2c3d4e5/*"),
    ("StringEquals", "aws:ResourceOrgID", "o-a1b2c3d4e5"),
    ("StringEquals", "aws:ResourceTag/Project", "${aws:PrincipalTag/Project}"),
    # Properties of the request
    ("ForAnyValue:StringEquals", "aws:CalledVia", "cloudformation.amazonaws.com"),
    ("StringEquals", "aws:CalledViaFirst", "cloudformation.amazonaws.com"),
    ("StringEquals", "aws:CalledViaLast", "dynamodb.amazonaws.com"),
    ("Bool", "aws:ViaAWSService", "false"),
    ("DateLessThan", "aws:CurrentTime", "2030-01-01T00:00:00Z"),
    ("DateGreaterThan", "aws:EpochTime", "2020-01-01T00:00:00Z"),
    ("NumericGreaterThan", "aws:EpochTime", "1577836800"),  # Date or Numeric
    ("StringLike", "aws:referer", "https://example.com/*"),
    ("StringEquals", "aws:RequestedRegion", "eu-west-1"),
    ("StringEquals", "aws:RequestTag/env", "prod"),
    ("ForAllValues:StringEquals", "aws:TagKeys", "env"),
    ("Bool", "aws:SecureTransport", "false"),
    ("StringEquals", "aws:SourceAccount", "111122223333"),
    ("ArnLike", "aws:SourceArn", "arn:aws:s3:::example-bucket"),
    ("StringEquals", "aws:SourceOrgID", "o-a1b2c3d4e5"),
    ("ForAnyValue:StringLike", "aws:SourceOrgPaths", "o-a1b2c3d4e5/*"),
    ("StringLike", "aws:UserAgent", "aws-cli/*"),
    # Keys AWS managed MCP servers add (Agent Toolkit for AWS, "How AWS MCP Server works with IAM")
    ("Bool", "aws:ViaAWSMCPService", "true"),
    ("StringEquals", "aws:CalledViaAWSMCP", "aws-mcp.amazonaws.com"),
    # Amazon SNS's default topic policy ("aws:SourceAccount versus aws:SourceOwner")
    ("StringEquals", "AWS:SourceOwner", "111122223333"),
    # Names ignore case; a tag key may hold slashes and a policy variable
    ("IpAddress", "AWS:SOURCEIP", "203.0.113.0/24"),
    ("StringEquals", "aws:principaltag/cost-center/team", "blue"),
    ("StringEquals", "AWS:RequestTag/${aws:username}", "owner"),
]


def _doc(rows: list[tuple[str, str, str]]) -> dict[str, Any]:
    statements = [
        {
            "Effect": "Deny",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::example-bucket/*",
            "Condition": {operator: {key: value}},
        }
        for operator, key, value in rows
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def _findings(tmp_path: Path, doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> Any:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", "--format", "json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["problems"] == []
    return out["findings"]


def test_every_documented_global_key_with_its_operator_raises_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _findings(tmp_path, _doc(CORRECT), capsys)
    assert [(f["path"], f["code"], f["message"]) for f in found] == []


@pytest.mark.parametrize(
    ("operator", "key", "code"),
    [
        ("StringEquals", "aws:SourceOwnr", "INVALID_GLOBAL_CONDITION_KEY"),
        ("StringEquals", "aws:PrincipalTag/", "INVALID_GLOBAL_CONDITION_KEY"),  # no tag key
        ("StringEquals", "aws:ViaAWSMCPService", "TYPE_MISMATCH"),  # a Bool key
        ("NumericEquals", "aws:CalledViaAWSMCP", "TYPE_MISMATCH"),
    ],
)
def test_near_misses_are_found(
    operator: str, key: str, code: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = "1" if operator.startswith("Numeric") else "true"
    found = _findings(tmp_path, _doc([(operator, key, value)]), capsys)
    assert [f["code"] for f in found] == [code]
