"""The organization of a version: `organization/organization.json` (or `organization.json` at the
version top), its tree of OUs and accounts, and the SCPs and RCPs attached to each node, with the
documents in `organization/scps/<Name>.json` and `organization/rcps/<Name>.json`.

AWS's rules kept here (AWS Organizations User Guide, "SCP evaluation",
https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html,
and "Resource control policies"): a node without `scps` has `FullAWSAccess` (AWS attaches it by
default); `RCPFullAWSAccess` is attached to every node and cannot be removed. Both are built in
unless the store gives `organization/scps/FullAWSAccess.json`. Which levels apply to a request
(management account, service-linked roles) is the decision's business (pdp/chain/).

Refused because AWS cannot hold them:
- `"scps": []` on a node or an account. AWS Organizations API Reference, DetachPolicy: "Every
  root, OU, and account must have at least one SCP attached." (A missing `scps` is the default
  FullAWSAccess; `"rcps": []` is fine: RCPFullAWSAccess stays attached.)
- an `Allow` statement in an RCP of the store. AWS Organizations User Guide, "RCP syntax"
  (orgs_manage_policies_rcps_syntax.html): "The effect of `Allow` is only supported for the
  `RCPFullAWSAccess` policy", the built-in one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pdp.language import Policy, parse_policy
from pdp.names import is_account_id, is_policy_name

if TYPE_CHECKING:
    from pdp.store.version import _Reader

__all__ = [
    "FULL_AWS_ACCESS",
    "ORGANIZATION_FILES",
    "ORGANIZATION_FOLDER",
    "RCP_FULL_AWS_ACCESS",
    "OrgNode",
    "Organization",
    "builtin_rcp",
    "builtin_scp",
    "read_organization",
]

ORGANIZATION_FOLDER = "organization"
ORGANIZATION_FILES = ("organization/organization.json", "organization.json")
FULL_AWS_ACCESS = "FullAWSAccess"
RCP_FULL_AWS_ACCESS = "RCPFullAWSAccess"
# AWS Organizations API Reference: Organization.Id, Root.Id, OrganizationalUnit.Id
_ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")
_ROOT_ID = re.compile(r"r-[0-9a-z]{4,32}")
_OU_ID = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}")
_ID_RULES = {
    "root": (_ROOT_ID, '"r-" and 4 to 32 lower-case letters or digits'),
    "ou": (_OU_ID, '"ou-", 4 to 32 lower-case letters or digits, "-", 8 to 32 more'),
}
_TOP_FIELDS = ("id", "management_account", "root", "accounts")
_NODE_FIELDS = ("id", "name", "scps", "rcps", "accounts", "units")
_FOLDER_ENTRIES = ("organization.json", "scps", "rcps")
_MAX_DEPTH = 5  # AWS: an OU tree is at most five levels deep below the root


@dataclass(frozen=True, slots=True)
class OrgNode:
    """The root or an OU: its id, name, the SCP and RCP names attached to it (`scps` with the
    default applied: absent in the file is `("FullAWSAccess",)`; `rcps` without the
    always-attached RCPFullAWSAccess), the accounts directly in it and its units."""

    id: str
    name: str
    kind: Literal["root", "ou"]
    scps: tuple[str, ...] = (FULL_AWS_ACCESS,)
    rcps: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    units: tuple[OrgNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Organization:
    """The organization, validated: every name it attaches is in `scps` / `rcps` (built-ins
    included), every account is in the tree once. `account_attachments` maps an account to its
    own (scps, rcps), with the same defaults as a node."""

    id: str
    management_account: str
    root: OrgNode
    account_attachments: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    scps: dict[str, Policy]
    rcps: dict[str, Policy]
    file: str
    _paths: dict[str, tuple[OrgNode, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        def walk(node: OrgNode, above: tuple[OrgNode, ...]) -> None:
            here = (*above, node)
            for account in node.accounts:
                self._paths.setdefault(account, here)
            for unit in node.units:
                walk(unit, here)

        walk(self.root, ())

    def accounts(self) -> tuple[str, ...]:
        """Every account of the tree, in tree order."""
        return tuple(self._paths)

    def path_of(self, account: str) -> tuple[OrgNode, ...] | None:
        """The nodes from the root down to the one holding `account`; None when the account
        is not in the organization."""
        return self._paths.get(account)

    def org_paths(self, account: str) -> str:
        """`o-a1b2c3d4e5/r-a1b2/ou-a1b2-1111aaaa/`: the value of aws:PrincipalOrgPaths /
        aws:ResourceOrgPaths for an account. Raises KeyError for an account not in the tree
        (ask `path_of` first): there is no path to give, and an empty one would match nothing
        by accident rather than by rule."""
        nodes = self._paths[account]
        return "/".join((self.id, *(n.id for n in nodes))) + "/"

    def scp_levels(self, account: str) -> tuple[tuple[Policy, ...], ...]:
        """The SCPs of each level from the root to the account: one tuple per level (the root,
        each OU, the account itself), each of which must allow. () for an account outside
        the organization."""
        nodes = self._paths.get(account)
        if nodes is None:
            return ()
        own = self.account_attachments.get(account, ((FULL_AWS_ACCESS,), ()))[0]
        return tuple(
            tuple(self.scps[n] for n in names) for names in (*(n.scps for n in nodes), own)
        )

    def rcp_levels(self, account: str) -> tuple[tuple[Policy, ...], ...]:
        """The RCPs of each level, as `scp_levels`; every level holds RCPFullAWSAccess first."""
        nodes = self._paths.get(account)
        if nodes is None:
            return ()
        own = self.account_attachments.get(account, ((FULL_AWS_ACCESS,), ()))[1]
        full = self.rcps[RCP_FULL_AWS_ACCESS]
        return tuple(
            (full, *(self.rcps[n] for n in names)) for names in (*(n.rcps for n in nodes), own)
        )


def builtin_scp() -> Policy:
    """`FullAWSAccess`: Allow * on *, what AWS attaches to every node by default."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    return parse_policy(
        document, name=f"{ORGANIZATION_FOLDER}/scps/{FULL_AWS_ACCESS}.json", kind="scp"
    )


def builtin_rcp() -> Policy:
    """`RCPFullAWSAccess`: Allow * on * for Principal *, attached to every node for good."""
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
    }
    name = f"{ORGANIZATION_FOLDER}/rcps/{RCP_FULL_AWS_ACCESS}.json"
    return parse_policy(document, name=name, kind="rcp")


def read_organization(reader: _Reader) -> Organization | None:
    """The version's organization, or None when it has none or it is refused (problems in
    `reader`). Policy files without an organization file are refused: they would apply to
    nothing, silently."""
    present = [rel for rel in ORGANIZATION_FILES if os.path.lexists(reader.root / rel)]
    folder = reader.root / ORGANIZATION_FOLDER
    if os.path.isdir(folder):
        for entry in sorted(os.listdir(folder)):
            if not entry.startswith(".") and entry not in _FOLDER_ENTRIES:
                reader.add(
                    f"{ORGANIZATION_FOLDER}/{entry}",
                    "",
                    "unexpected_file",
                    f"{ORGANIZATION_FOLDER}/ holds only {', '.join(_FOLDER_ENTRIES)}",
                )
    scps = _policies(reader, "scps", "scp")
    rcps = _policies(reader, "rcps", "rcp")
    if len(present) > 1:
        reader.add(
            present[1],
            "",
            "layout_conflict",
            f"both {present[0]} and {present[1]}: keep one",
        )
        return None
    if not present:
        for rel in (*(p.name for p in scps.values()), *(p.name for p in rcps.values())):
            reader.add(
                rel,
                "",
                "no_organization",
                "an SCP or RCP without organization/organization.json applies to nothing",
            )
        return None
    rel = present[0]
    path = reader.root / rel
    if os.path.islink(path):
        real = reader.follow(rel, str(path))
        if real is None:
            return None
    if not os.path.isfile(path):
        reader.add(rel, "", "not_a_file", "not a regular file")
        return None
    doc = reader.object(rel, reader.read_json(rel, str(path)), _TOP_FIELDS)
    if doc is None:
        return None
    scps.setdefault(FULL_AWS_ACCESS, builtin_scp())
    rcps[RCP_FULL_AWS_ACCESS] = builtin_rcp()
    return _Builder(reader, rel, scps, rcps).build(doc)


def _policies(reader: _Reader, folder: str, kind: str) -> dict[str, Policy]:
    """The documents of organization/scps/ or organization/rcps/, by name (file stem)."""
    out: dict[str, Policy] = {}
    seen: dict[str, str] = {}
    for rel, path in reader.files(f"{ORGANIZATION_FOLDER}/{folder}"):
        stem = rel.rpartition("/")[2][: -len(".json")]
        if not is_policy_name(stem):
            reader.add(rel, "", "invalid_name", f'invalid policy name "{stem}"')
            continue
        if kind == "rcp" and stem == RCP_FULL_AWS_ACCESS:
            reader.add(
                rel,
                "",
                "invalid_name",
                f"{RCP_FULL_AWS_ACCESS} is built in and cannot be changed or removed (AWS)",
            )
            continue
        if stem.lower() in seen:
            reader.add(
                rel,
                "",
                "duplicate_name",
                f'"{stem}" and "{seen[stem.lower()]}" differ only in case',
            )
        seen[stem.lower()] = stem
        raw = reader.read_bytes(rel, path)
        if raw is None:
            continue
        policy = reader.policy(rel, raw, name=rel, kind=kind)
        if policy is not None:
            if kind == "rcp":
                _refuse_rcp_allows(reader, rel, policy)
            out[stem] = policy
    return out


def _refuse_rcp_allows(reader: _Reader, rel: str, policy: Policy) -> None:
    """Each Allow statement of a store RCP, reported: only AWS's RCPFullAWSAccess may allow.
    (The policy stays known by name, so nodes attaching it get no second, misleading error.)"""
    statements = policy.document.get("Statement")
    placed = [("Statement", statements)] if isinstance(statements, dict) else []
    if isinstance(statements, list):
        placed = [(f"Statement[{i}]", s) for i, s in enumerate(statements)]
    for where, statement in placed:
        if isinstance(statement, dict) and statement.get("Effect") == "Allow":
            reader.add(
                rel,
                f"{where}.Effect",
                "invalid_field",
                f"an RCP may not Allow: only the built-in {RCP_FULL_AWS_ACCESS} allows (AWS,"
                ' "RCP syntax")',
                'write "Effect": "Deny" with the conditions under which access is refused',
            )


class _Builder:
    """Turns organization.json into an Organization, reporting every problem with its path."""

    def __init__(
        self, reader: _Reader, rel: str, scps: dict[str, Policy], rcps: dict[str, Policy]
    ) -> None:
        self.reader = reader
        self.rel = rel
        self.scps = scps
        self.rcps = rcps
        self.placed: dict[str, str] = {}  # account -> where it is listed
        self.ids: dict[str, str] = {}  # node id -> where it is
        self.before = len(reader.problems)

    def add(self, path: str, code: str, message: str, hint: str | None = None) -> None:
        self.reader.add(self.rel, path, code, message, hint)

    def build(self, doc: dict[str, Any]) -> Organization | None:
        org_id = doc.get("id")
        if not isinstance(org_id, str) or not _ORG_ID.fullmatch(org_id):
            self.add(
                "id",
                "invalid_field",
                'id must be an organization id: "o-" and 10 to 32 lower-case letters or digits',
            )
        management = doc.get("management_account")
        if not is_account_id(management):
            self.add("management_account", "invalid_field", "management_account must be 12 digits")
        root_doc = doc.get("root")
        root = None
        if root_doc is None:
            self.add("root", "missing_field", "an organization needs a root")
        else:
            root = self.node(root_doc, "root", "root", 0)
        attachments = self.attachments(doc.get("accounts", {}))
        if is_account_id(management) and root is not None and management not in self.placed:
            self.add(
                "management_account",
                "unknown_account",
                f"management account {management} is not in the tree (root or a unit's accounts)",
            )
        if len(self.reader.problems) != self.before or root is None:
            return None
        assert isinstance(org_id, str) and isinstance(management, str)
        return Organization(
            org_id, management, root, attachments, dict(self.scps), dict(self.rcps), self.rel
        )

    def object(self, doc: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        """`doc` if it is an object (its repeated and unknown keys reported under `path`)."""
        if not isinstance(doc, dict):
            self.add(path, "not_an_object", f"{path} must be a JSON object")
            return None
        for key in getattr(doc, "duplicates", ()):
            self.add(f"{path}.{key}", "duplicate_key", f'duplicate key "{key}"')
        for key in doc:
            if key not in allowed:
                self.add(
                    f"{path}.{key}",
                    "unknown_field",
                    f'unknown field "{key}"',
                    f"known: {', '.join(allowed)}",
                )
        return doc

    def node(self, doc: Any, path: str, kind: Literal["root", "ou"], depth: int) -> OrgNode | None:
        doc = self.object(doc, path, _NODE_FIELDS)
        if doc is None:
            return None
        rule, described = _ID_RULES[kind]
        node_id = doc.get("id")
        if not isinstance(node_id, str) or not rule.fullmatch(node_id):
            self.add(f"{path}.id", "invalid_field", f"{kind} id must be {described}")
            node_id = "?"
        elif node_id in self.ids:
            self.add(f"{path}.id", "duplicate_id", f"{node_id} is also at {self.ids[node_id]}")
        else:
            self.ids[node_id] = path
        name = doc.get("name", "Root" if kind == "root" else node_id)
        if not isinstance(name, str) or not name:
            self.add(f"{path}.name", "invalid_field", "name must be a string")
            name = node_id
        scps = self.names(doc, path, "scps", self.scps, (FULL_AWS_ACCESS,))
        rcps = self.names(doc, path, "rcps", self.rcps, ())
        accounts = self.accounts(doc.get("accounts", []), f"{path}.accounts")
        units_doc = doc.get("units", [])
        units: list[OrgNode] = []
        if not isinstance(units_doc, list):
            self.add(f"{path}.units", "invalid_field", "units must be a list of units")
        elif units_doc and depth >= _MAX_DEPTH:
            self.add(f"{path}.units", "invalid_field", f"OUs nest at most {_MAX_DEPTH} deep (AWS)")
        else:
            for i, unit_doc in enumerate(units_doc):
                unit = self.node(unit_doc, f"{path}.units[{i}]", "ou", depth + 1)
                if unit is not None:
                    units.append(unit)
        return OrgNode(node_id, name, kind, scps, rcps, accounts, tuple(units))

    def names(
        self,
        doc: dict[str, Any],
        path: str,
        key: str,
        known: dict[str, Policy],
        default: tuple[str, ...],
    ) -> tuple[str, ...]:
        if key not in doc:
            return default
        value = doc[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(f"{path}.{key}", "invalid_field", f"{key} must be a list of policy names")
            return default
        if key == "scps" and not value:
            self.add(
                f"{path}.scps",
                "invalid_field",
                "scps is empty: every root, OU and account has at least one SCP attached (AWS)",
                f'leave "scps" out for {FULL_AWS_ACCESS}, or attach an SCP that allows only'
                " what this level may do",
            )
            return ()
        out = []
        folder = f"{ORGANIZATION_FOLDER}/{key}"
        for i, name in enumerate(value):
            if key == "rcps" and name == RCP_FULL_AWS_ACCESS:
                continue  # always attached; naming it changes nothing
            if name not in known:
                self.add(
                    f"{path}.{key}[{i}]",
                    "missing_reference",
                    f'{key[:-1].upper()} "{name}" does not exist in {folder}/',
                )
            elif name not in out:
                out.append(name)
        return tuple(out)

    def accounts(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.add(path, "invalid_field", "accounts must be a list of 12-digit account ids")
            return ()
        out = []
        for i, account in enumerate(value):
            where = f"{path}[{i}]"
            if not is_account_id(account):
                self.add(where, "invalid_field", "an account id is 12 digits")
            elif account in self.placed:
                self.add(
                    where,
                    "duplicate_account",
                    f"account {account} is also at {self.placed[account]}"
                    " (an account is in one place of the tree)",
                )
            else:
                self.placed[account] = where
                out.append(account)
        return tuple(out)

    def attachments(self, value: Any) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """The top `accounts` map: each account's own SCPs and RCPs."""
        if not isinstance(value, dict):
            self.add("accounts", "invalid_field", "accounts must map account ids to attachments")
            return {}
        out = {}
        for account, item in value.items():
            where = f"accounts.{account}"
            if not is_account_id(account):
                self.add(where, "invalid_field", "an account id is 12 digits")
                continue
            if account not in self.placed:
                self.add(
                    where,
                    "unknown_account",
                    f"account {account} has attachments but is not in the tree",
                )
            doc = self.object(item, where, ("scps", "rcps"))
            if doc is None:
                continue
            out[account] = (
                self.names(doc, where, "scps", self.scps, (FULL_AWS_ACCESS,)),
                self.names(doc, where, "rcps", self.rcps, ()),
            )
        return out
