"""The store runtime: a versioned directory read, checked as a whole, indexed and served.

version (read one version directory: users, groups, policies, account; roles, resources and
organization read its roles/, resources/ and organization files, and accounts/<id>/) -> index
(principal -> effective policies) -> snapshot (index + decision cache; decides) -> activation
(build a snapshot, run the store's policy tests, fall back to the newest good version) -> authorizer
(the serving snapshot, swapped atomically on reload). aws_managed reads AWS managed policy
files: the built-ins of `managed/` and a version's `aws-managed/` folder; `importer` writes a
new version from an AWS account's authorization details export (`pdp import`), through
`publish` (write aside, load, rename, move `current`), which `authoring` uses too (`pdp init`,
`pdp publish`); diff compares two versions (`pdp diff`); shards and
cache are the tables behind the index and the snapshot; checks holds a version's validation
findings (pdp.reference) and the refusal a store's store.json may ask for.
"""

from pdp.store.activation import (
    DEFAULT_CACHE_SIZE,
    build_snapshot,
    load_directory,
    load_newest,
    load_store,
    run_policy_tests,
)
from pdp.store.authoring import PublishedDirectory, init_store, publish_directory
from pdp.store.authorizer import Authorizer, ReloadResult
from pdp.store.authzen import AuthzenMapping
from pdp.store.aws_managed import AWS_MANAGED_FOLDER, ManagedPolicy, builtin_managed
from pdp.store.checks import (
    CheckFailed,
    findings_of,
    organization_findings,
    store_findings,
    version_findings,
)
from pdp.store.diff import (
    DEFAULT_MAX_CHECKS,
    DIFF_FORMATS,
    DiffFailed,
    DiffTooLarge,
    PermissionChange,
    StatementChange,
    VersionDiff,
    diff_snapshots,
    diff_versions,
    open_version,
    render_diff,
    statement_diff,
)
from pdp.store.gate import CHANGE_KINDS, ExpectedChange, ImpactGate
from pdp.store.importer import (
    MAX_EXPORT_BYTES,
    ImportFailed,
    ImportResult,
    Skipped,
    import_authorization_details,
)
from pdp.store.index import (
    ACCOUNT_GRANT,
    AWS_MANAGED_PREFIX,
    available_managed,
    aws_managed_policies,
)
from pdp.store.organization import Organization, OrgNode
from pdp.store.publish import Published, PublishFailed
from pdp.store.queries import (
    DEFAULT_LIMIT as DEFAULT_QUERY_LIMIT,
)
from pdp.store.queries import (
    MAX_LIMIT as MAX_QUERY_LIMIT,
)
from pdp.store.queries import (
    QueryError,
    QueryIndex,
    WhatCanResult,
    WhoCanResult,
    query_index,
    what_can,
    who_can,
)
from pdp.store.resources import ResourceFile
from pdp.store.roles import Role
from pdp.store.snapshot import PRINCIPAL_TYPES, Snapshot
from pdp.store.version import (
    VERSION_ENTRIES,
    AccessKey,
    Account,
    Group,
    MfaDevice,
    SigningCertificate,
    StoreError,
    StoreVersion,
    User,
    is_version_directory,
    read_version,
    resolve_version,
    version_names,
    version_stamp,
)

__all__ = [
    "ACCOUNT_GRANT",
    "AWS_MANAGED_FOLDER",
    "AWS_MANAGED_PREFIX",
    "CHANGE_KINDS",
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_MAX_CHECKS",
    "DIFF_FORMATS",
    "MAX_EXPORT_BYTES",
    "PRINCIPAL_TYPES",
    "VERSION_ENTRIES",
    "AccessKey",
    "Account",
    "AuthzenMapping",
    "Authorizer",
    "CheckFailed",
    "DiffFailed",
    "DiffTooLarge",
    "ExpectedChange",
    "Group",
    "ImpactGate",
    "ImportFailed",
    "ImportResult",
    "ManagedPolicy",
    "MfaDevice",
    "OrgNode",
    "Organization",
    "PermissionChange",
    "PublishFailed",
    "Published",
    "PublishedDirectory",
    "DEFAULT_QUERY_LIMIT",
    "MAX_QUERY_LIMIT",
    "QueryError",
    "QueryIndex",
    "ReloadResult",
    "ResourceFile",
    "Role",
    "SigningCertificate",
    "Skipped",
    "Snapshot",
    "StatementChange",
    "StoreError",
    "StoreVersion",
    "User",
    "VersionDiff",
    "WhatCanResult",
    "WhoCanResult",
    "available_managed",
    "aws_managed_policies",
    "build_snapshot",
    "builtin_managed",
    "diff_snapshots",
    "diff_versions",
    "findings_of",
    "import_authorization_details",
    "init_store",
    "is_version_directory",
    "load_directory",
    "load_newest",
    "load_store",
    "open_version",
    "organization_findings",
    "publish_directory",
    "query_index",
    "read_version",
    "render_diff",
    "resolve_version",
    "run_policy_tests",
    "statement_diff",
    "store_findings",
    "version_findings",
    "version_names",
    "version_stamp",
    "what_can",
    "who_can",
]
