"""A small organization store shared by the evaluation-chain tests: a management account, a
member account in one OU whose SCP denies S3 outside the organization, a user, a role and a
tagged resource; and the writer that lays any such file map out as a store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MGMT, MEMBER = "111111111111", "222222222222"
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
PERIMETER = {  # an SCP denying what leaves the organization
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:ResourceOrgID": "o-a1b2c3d4e5"}},
        }
    ],
}
FILES: dict[str, Any] = {
    f"accounts/{MGMT}/account.json": {"account_id": MGMT},
    f"accounts/{MEMBER}/account.json": {"account_id": MEMBER},
    f"accounts/{MEMBER}/users/alice.json": {"policies": ["All"]},
    f"accounts/{MEMBER}/policies/All.json": ALLOW_ALL,
    f"accounts/{MEMBER}/roles/App.json": {
        "trust_policy": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": MEMBER}, "Action": "sts:AssumeRole"}
            ],
        },
        "policies": ["All"],
        "tags": {"team": "red"},
    },
    f"accounts/{MEMBER}/resources/data.json": {
        "arn": "arn:aws:s3:::data/*",
        "tags": {"env": "prod"},
    },
    "organization/organization.json": {
        "id": "o-a1b2c3d4e5",
        "management_account": MGMT,
        "root": {
            "id": "r-a1b2",
            "accounts": [MGMT],
            "units": [
                {
                    "id": "ou-a1b2-11111111",
                    "name": "Work",
                    "accounts": [MEMBER],
                    "scps": ["FullAWSAccess", "Perimeter"],
                }
            ],
        },
    },
    "organization/scps/Perimeter.json": PERIMETER,
}


def write_store(root: Path, files: dict[str, Any]) -> Path:
    """`files` (path in the version -> JSON content) as a store: versions/1 and `current`."""
    version = root / "versions" / "1"
    for rel, content in files.items():
        path = version / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    os.symlink("versions/1", root / "current")
    return root
