"""Everything beyond one account's identity policies, resolved for the evaluation chain.

A `World` holds, for one store version: each account's `Index` (users and groups), its roles
with their resolved policies and boundaries, the resources the store knows (their ARN patterns,
policies, tags and accounts), users' permissions boundaries, and the organization's SCP and RCP
levels per account. `layers_for` turns one request into the `Layers` that
`pdp.language.chain.decide_chain` decides, with the condition keys the model derives
(aws:PrincipalOrgID, aws:ResourceAccount, aws:ResourceTag/..., ...), which the caller may then
not set. A store without roles, resources, boundaries, an organization or a second account has
no World at all: its decisions take the identity-only path, exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pdp.errors import Diagnostic, PolicyValidationError, RequestError
from pdp.language import (
    Guard,
    Layers,
    Policy,
    PolicySet,
    forget_plans,
    glob_matcher,
    joined_keys,
    parse_policy,
)
from pdp.model import Principal, Session
from pdp.store.index import Index, UserEntry
from pdp.store.organization import Organization
from pdp.store.resources import ResourceFile
from pdp.store.roles import Role
from pdp.store.version import StoreVersion

__all__ = ["RoleEntry", "World", "needs_world"]

_SESSION_ARN = re.compile(
    r"arn:aws:sts::([0-9]{12}):assumed-role/([\w+=,.@-]{1,64})/([\w+=,.@-]{2,64})", re.ASCII
)
_ROLE_ARN = re.compile(
    r"arn:aws:iam::([0-9]{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})", re.ASCII
)
_ROOT_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):root", re.ASCII)
# sts actions on a role ARN are decided by its trust policy, which must allow them
_TRUST_ACTIONS = frozenset(
    {
        "sts:assumerole",
        "sts:assumerolewithwebidentity",
        "sts:assumerolewithsaml",
        "sts:tagsession",
        "sts:setsourceidentity",
        "sts:setcontext",
    }
)
# RCPs govern the resources of these services only; a request to any other service passes no
# RCP. AWS Organizations User Guide, orgs_manage_policies_rcps.html, "List of AWS services that
# support RCPs": "RCPs apply to resources of the following AWS services:" Amazon S3 (s3), AWS
# Security Token Service (sts), AWS Key Management Service (kms), Amazon SQS (sqs), AWS Secrets
# Manager (secretsmanager), Amazon Elastic Container Registry (ecr), Amazon OpenSearch
# Serverless (aoss), Amazon Cognito (cognito-idp: user pools), Amazon CloudWatch Logs (logs),
# Amazon DynamoDB (dynamodb); the last three were added in January and February 2026.
# tests/unit/test_store_model.py pins this set: a change to it must change the test too.
RCP_SERVICES = frozenset(
    {"s3", "sts", "kms", "sqs", "secretsmanager", "ecr", "aoss", "cognito-idp", "logs", "dynamodb"}
)
_KMS_KEY = re.compile(r"arn:aws:kms:[a-z0-9-]*:[0-9]{12}:key/.+", re.ASCII)
_MAX_SESSION_POLICIES = 1024
_MAX_USERS = 8192  # remembered user spellings (each at most one ARN long)
_MAX_SESSIONS = 8192  # remembered session principals and their parts
# Sessions stating more (tags, policies) than this many characters are decided without being
# remembered: the tables stay within _MAX_SESSIONS x this, whatever callers send.
_MAX_SESSION_REMEMBERED = 2048
# Entries alone do not bound bytes: a session of 50 two-character tags states ~150 characters
# but its principal (tags, condition keys) and each of its Layers (joined keys) take ~20 KB.
# The tables callers fill with principals (_sessions, _session_parts, _layers) are emptied
# together when what they hold is estimated past this many bytes.
_SESSION_BUDGET = 64 * 2**20
_TAG_BYTES = 400  # a tag, once in the principal's tags, its condition keys and joined keys


def remembers(session: Session | None) -> bool:
    """Whether the World remembers what it works out for a role session (its principal, its
    parts, its Layers): not when it states more than _MAX_SESSION_REMEMBERED characters."""
    return session is None or session.size <= _MAX_SESSION_REMEMBERED


def _principal_bytes(principal: Principal) -> int:
    """A rough size of a principal: its tags, its condition keys and their text."""
    text = sum(len(str(k)) + len(str(v)) for k, v in principal.tags.items())
    return _TAG_BYTES * len(principal.tags) + 2 * text + 100 * len(principal.context_keys)


def needs_world(version: StoreVersion) -> bool:
    """Whether a version holds anything beyond one account's users, groups and policies."""
    return bool(
        version.accounts
        or version.roles
        or version.resources
        or version.organization is not None
        or any(u.permissions_boundary for u in version.users.values())
    )


class RoleEntry:
    """A role of the store: its record and its resolved identity policies and boundary."""

    __slots__ = ("role", "account", "arn", "identity", "boundary", "trust")

    def __init__(
        self, role: Role, account: str, identity: PolicySet, boundary: PolicySet | None
    ) -> None:
        self.role = role
        self.account = account
        self.arn = role.arn
        self.identity = identity
        self.boundary = boundary
        self.trust = role.trust_policy


@dataclass(frozen=True, slots=True)
class _Known:
    """The resource files that match one resource ARN, and what they tell of it."""

    files: tuple[ResourceFile, ...]
    account: str
    tags: Mapping[str, str]


class World:
    """The accounts, roles, resources, boundaries and organization of one version."""

    def __init__(self, version: StoreVersion, home: Index) -> None:
        self.version = version.name
        self.org: Organization | None = version.organization
        self.problems: list[Diagnostic] = []
        self.home = home
        self.indexes: dict[str, Index] = {home.account: home}
        subs = version.accounts or {home.account: version}
        for account, sub in subs.items():
            if account not in self.indexes:
                index = Index(sub)
                self.problems.extend(index.problems)
                self.indexes[account] = index
        self._sets: dict[tuple[int, ...], PolicySet] = {}
        self.roles: dict[str, RoleEntry] = {}  # lower-cased (account, name) key "acct/name"
        self.boundaries: dict[str, PolicySet] = {}  # user ARN -> boundary
        resources: list[ResourceFile] = []
        for account, sub in subs.items():
            index = self.indexes[account]
            for role in sub.roles.values():
                attached = index.resolve_policies(role.file, role.policies)
                identity = self._set(attached + role.inline_policies)
                boundary = self._boundary(index, role.file, role.permissions_boundary)
                entry = RoleEntry(role, account, identity, boundary)
                self.roles[f"{account}/{role.name.lower()}"] = entry
            for user in sub.users.values():
                if user.permissions_boundary:
                    found = self._boundary(index, user.file, user.permissions_boundary)
                    if found is not None:
                        arn = f"arn:aws:iam::{account}:user{user.path}{user.name}"
                        self.boundaries[arn] = found
            resources.extend(sub.resources)
        self._exact: dict[str, list[ResourceFile]] = {}
        self._patterns: list[tuple[object, ResourceFile]] = []
        for file in resources:
            for pattern in file.arns:
                if "*" in pattern or "?" in pattern:
                    self._patterns.append((glob_matcher(pattern), file))
                else:
                    self._exact.setdefault(pattern, []).append(file)
        self._scps: dict[str, Guard | None] = {}
        self._rcps: dict[str, Guard | None] = {}
        self._org_keys: dict[str, dict[str, object]] = {}
        self._session_policies: dict[tuple[str, bytes], PolicySet] = {}
        self._sides: dict[tuple[object, ...], _Side] = {}
        self._layers: dict[tuple[object, ...], tuple[_Prepared, tuple[object, ...]]] = {}
        # session principals by ARN and the attributes that make their keys
        self._sessions: dict[tuple[object, ...], tuple[Principal, RoleEntry]] = {}
        self._session_parts: dict[
            tuple[object, ...], tuple[Principal, RoleEntry, PolicySet | None]
        ] = {}
        self._spent = 0  # estimated bytes held by _sessions, _session_parts and _layers
        self._users: dict[str, tuple[Index, UserEntry]] = {}  # spellings resolved, exact
        self._callers: dict[tuple[str, str], Principal] = {}  # services, providers, anonymous

    # -- resolution ------------------------------------------------------------------------

    def _set(self, policies: tuple[Policy, ...]) -> PolicySet:
        unique = tuple({id(p): p for p in policies}.values())
        key = tuple(id(p) for p in unique)
        found = self._sets.get(key)
        if found is None:
            found = self._sets[key] = PolicySet(unique, self.version)
        return found

    def _boundary(self, index: Index, file: str, ref: str | None) -> PolicySet | None:
        if not ref:
            return None
        found = index.resolve_policies(file, (ref,), where="permissions_boundary")
        return self._set(found) if found else None

    def user_boundary(self, entry: UserEntry) -> PolicySet | None:
        return self.boundaries.get(entry.arn)

    def role(self, account: str, name: str) -> RoleEntry | None:
        return self.roles.get(f"{account}/{name.lower()}")

    def role_by_arn(self, arn: str) -> RoleEntry | None:
        match = _ROLE_ARN.fullmatch(arn)
        if match is None:
            return None
        entry = self.role(match.group(1), match.group(2))
        return entry if entry is not None and entry.arn.lower() == arn.lower() else None

    def is_root(self, arn: str) -> str | None:
        """The account of a root ARN of one of the store's accounts, else None."""
        match = _ROOT_ARN.fullmatch(arn)
        return match.group(1) if match and match.group(1) in self.indexes else None

    def resolve_user(self, principal: str) -> tuple[Index, UserEntry] | None:
        """A user by name (the home account's) or by ARN (any account of the store). Spellings
        that resolved are remembered (bounded): a service asks for the same users again."""
        found = self._users.get(principal)
        if found is not None:
            return found
        if principal.startswith("arn:") and principal.count(":") >= 5:
            index = self.indexes.get(principal.split(":")[4])
            if index is None:
                return None
        else:
            index = self.home
        entry = index.resolve(principal)
        if entry is None:
            return None
        if len(self._users) >= _MAX_USERS:
            self._users.clear()
        found = self._users[principal] = (index, entry)
        return found

    def session(
        self, arn: str, session: Session | None
    ) -> tuple[Principal, RoleEntry, PolicySet | None]:
        """A role session's principal, its role and its session policies (None when it has
        none): `session_principal` and `session_policies` in one lookup, remembered (bounded)
        by the ARN and what the session states."""
        if session is not None and not remembers(session):
            caller, role = self.session_principal(arn, session)
            return caller, role, self.session_policies(role, session)
        key = (arn, None if session is None else (session.principal_key, session.policies_key))
        found = self._session_parts.get(key)
        if found is None:
            caller, role = self.session_principal(arn, session)
            policies = None if session is None else self.session_policies(role, session)
            if len(self._session_parts) >= _MAX_SESSIONS:
                self._session_parts.clear()
            self.spend(256 + (0 if session is None else len(session.policies_key)))
            found = self._session_parts[key] = (caller, role, policies)
        return found

    def session_principal(self, arn: str, session: Session | None) -> tuple[Principal, RoleEntry]:
        remembered = (arn, None if session is None else session.principal_key)
        found = self._sessions.get(remembered)
        if found is not None:
            return found
        match = _SESSION_ARN.fullmatch(arn)
        if match is None:
            raise RequestError(
                "principal: a role session is arn:aws:sts::<account>:assumed-role/<role>/<session>"
            )
        account, name, session_name = match.groups()
        entry = self.role(account, name)
        if entry is None:
            raise RequestError(
                f'principal: unknown role "{name}" in account {account}'
                f" (no such role in store version {self.version})"
            )
        role = entry.role
        principal = Principal.session(
            role.name,
            session_name,
            account=account,
            path=role.path,
            role_id=role.role_id,
            role_tags=role.tags,
            session=session,
        )
        if remembers(session):
            if len(self._sessions) >= _MAX_SESSIONS:
                self._sessions.clear()
            self.spend(1024 + _principal_bytes(principal))
            self._sessions[remembered] = (principal, entry)
        return principal, entry

    def session_policies(self, entry: RoleEntry, session: Session) -> PolicySet | None:
        """The session's policies (inline documents and managed ARNs) as one PolicySet, or None
        when it passes none. Compiled documents are kept in a bounded table by their JSON."""
        if not session.policies and not session.policy_arns:
            return None
        key = (entry.account, session.policies_key)
        found = self._session_policies.get(key)
        if found is not None:
            return found
        policies: list[Policy] = []
        for i, doc in enumerate(session.policies):
            try:
                policies.append(parse_policy(doc, f"session#policies[{i}]"))
            except PolicyValidationError as exc:
                raise RequestError(f"session.policies[{i}]: {exc}") from None
        index = self.indexes[entry.account]
        for i, arn in enumerate(session.policy_arns):
            found_policies = index.resolve_policies(
                "session", (arn,), where="policy_arns", quiet=True
            )
            if not found_policies:
                raise RequestError(f'session.policy_arns[{i}]: no policy "{arn}" in the store')
            policies.extend(found_policies)
        result = PolicySet(policies, self.version)
        if len(self._session_policies) >= _MAX_SESSION_POLICIES:
            self._forget_session_policies()
        self._session_policies[key] = result
        return result

    def spend(self, size: int) -> None:
        """Count `size` estimated bytes about to be remembered in _sessions, _session_parts or
        _layers; past _SESSION_BUDGET, the three are emptied (and the count restarts)."""
        self._spent += size
        if self._spent > _SESSION_BUDGET:
            self._spent = size
            self._sessions.clear()
            self._session_parts.clear()
            self._layers.clear()

    def _forget_session_policies(self) -> None:
        """Let go of every session policy set: the tables that hold one (session parts, layers,
        the chain's Plans) are emptied with the table that made them, so that no more than
        _MAX_SESSION_POLICIES sets callers sent stay alive, whatever they send."""
        self._session_policies.clear()
        self._session_parts.clear()
        self._layers.clear()
        forget_plans()

    def resource_caller(self, principal_type: str, principal: str) -> Principal:
        """The Principal of a service ("service"), an identity provider ("federated") or
        "anonymous": callers only resource policies can allow. Remembered by name (bounded),
        so that their requests find what was worked out for them before."""
        key = (principal_type, principal)
        found = self._callers.get(key)
        if found is None:
            found = resource_principal(principal_type, principal)
            if len(self._callers) >= _MAX_USERS:
                self._callers.clear()
            self._callers[key] = found
        return found

    # -- organization ----------------------------------------------------------------------

    def scp_levels(self, account: str) -> Guard | None:
        """The SCP levels that govern a principal of `account`; None outside an organization
        and for the management account (orgs_manage_policies_scps.html: "SCPs don't affect
        users or roles in the management account")."""
        if account not in self._scps:
            self._scps[account] = self._org_levels(account, "scp")
        return self._scps[account]

    def rcp_levels(self, account: str) -> Guard | None:
        """The RCP levels that govern a resource of `account` (None: no RCP applies; "RCPs
        don't affect resources in the management account")."""
        if account not in self._rcps:
            self._rcps[account] = self._org_levels(account, "rcp")
        return self._rcps[account]

    def _org_levels(self, account: str, kind: str) -> Guard | None:
        org = self.org
        if org is None or account == org.management_account or org.path_of(account) is None:
            return None
        levels = org.scp_levels(account) if kind == "scp" else org.rcp_levels(account)
        return Guard(levels, self.version)

    def org_keys(self, account: str, prefix: str) -> Mapping[str, object]:
        """aws:<prefix>OrgID / OrgPaths of an account in the organization (prefix "principal"
        or "resource", lower-cased keys), empty when it is in none."""
        cache_key = f"{prefix}/{account}"
        found = self._org_keys.get(cache_key)
        if found is None:
            org = self.org
            found = {}
            if org is not None and org.path_of(account) is not None:
                found = {
                    f"aws:{prefix}orgid": org.id,
                    f"aws:{prefix}orgpaths": (org.org_paths(account),),
                }
            self._org_keys[cache_key] = found
        return found

    # -- resources -------------------------------------------------------------------------

    def known(self, resource: str) -> _Known | None:
        """The store's resource files matching `resource`, with its account and tags."""
        files = list(self._exact.get(resource, ()))
        for matcher, file in self._patterns:
            if matcher(resource) and file not in files:  # type: ignore[operator]
                files.append(file)
        if not files:
            return None
        tags: dict[str, str] = {}
        where: dict[str, str] = {}
        for file in files:
            for key, value in file.tags.items():
                lower = key.lower()
                if lower in tags and tags[lower] != value:
                    raise RequestError(
                        f'resource: tag "{key}" differs between {where[lower]} and {file.file}'
                    )
                tags[lower] = value
                where[lower] = file.file
        return _Known(tuple(files), files[0].account, MappingProxyType(tags))


def resource_principal(principal_type: str, principal: str) -> Principal:
    """The Principal of a "service", a "federated" identity provider or "anonymous"."""
    if principal_type == "service":
        return Principal.service(principal)
    if principal_type == "federated":
        return Principal.federated(principal)
    return Principal.anonymous()


def arn_account(resource: str) -> str | None:
    """The account an ARN names in its fifth field, else None (S3 buckets name none)."""
    parts = resource.split(":", 5)
    if len(parts) == 6 and len(parts[4]) == 12 and parts[4].isdigit():
        return parts[4]
    return None


def _caller_resource_account(context: Mapping[str, object] | None) -> str | None:
    """The caller's aws:ResourceAccount, for a resource whose account the store cannot know
    (an S3 bucket it does not hold): what decides same- or cross-account then."""
    if context:
        for key, value in context.items():
            if isinstance(key, str) and key.lower() == "aws:resourceaccount":
                return value if isinstance(value, str) else None
    return None


_Side = tuple[
    "Guard | None",
    "Guard | None",
    "tuple[Policy, ...]",
    bool,
    bool,
    dict[str, object],
    frozenset[str],
]
_Prepared = tuple[Layers, Mapping[str, object], frozenset[str]]
_MAX_SIDES = 8192  # remembered request sides (each at most one resource ARN long)


def layers(
    world: World,
    caller: Principal,
    action: str,
    resource: str,
    context: Mapping[str, object] | None,
    identity: PolicySet | None,
    boundary: PolicySet | None,
    session: PolicySet | None = None,
    service_linked: bool = False,
    remember: bool = True,
) -> _Prepared:
    """The layers of one request, the principal's condition keys joined with those the model
    derives for it (`RequestContext.joined` takes them), and the keys
    (or key prefixes, ending in "/") the request may not set: those the store knows, present
    or absent (a known resource has the tags its files give it and no other).

    Most requests repeat these, so two bounded tables (cleared when full) remember them: what
    depends on the principal's account and type, the action and the resource only (shared by
    the account's principals), and the Layers of one principal with its policy sets (kept
    with the Plan that decide_chain builds on them). `remember=False`: the principal is one
    the World did not remember (`remembers`), and its Layers are not kept either."""
    stated = _caller_resource_account(context) if context else None
    key = (id(caller), id(identity), id(boundary), id(session), action, resource,
           service_linked, stated)  # fmt: skip
    found = world._layers.get(key)
    if found is not None:
        return found[0]
    side_key = (caller.account, caller.kind, action, resource, service_linked, stated)
    side = world._sides.get(side_key)
    if side is None:
        side = _side(world, caller, action, resource, stated, service_linked)
        if len(world._sides) >= _MAX_SIDES:
            world._sides.clear()
        world._sides[side_key] = side
    rcp, scp, policies, required, same_account, keys, sealed = side
    lay = Layers(rcp, scp, policies, required, identity, boundary, session, same_account)
    result = (lay, joined_keys(caller, keys), sealed)
    if not remember:
        return result
    if len(world._layers) >= _MAX_SIDES:
        world._layers.clear()
    world.spend(512 + len(action) + len(resource) + _TAG_BYTES // 4 * len(result[1]))
    # by identity: the entry holds the principal and the sets, so no id is reused while it lives
    world._layers[key] = (result, (caller, identity, boundary, session))
    return result


def _side(
    world: World,
    caller: Principal,
    action: str,
    resource: str,
    stated: str | None,
    service_linked: bool,
) -> _Side:
    keys: dict[str, object] = {}
    sealed: set[str] = set()
    trust = None
    known = None
    if action in _TRUST_ACTIONS:
        trust = world.role_by_arn(resource)
    if trust is not None:
        account = trust.account
        policies: tuple[Policy, ...] = (trust.trust,)
        required = True
        tags: Mapping[str, str] = {k.lower(): v for k, v in trust.role.tags.items()}
    else:
        known = world.known(resource)
        if known is not None:
            account = known.account
            policies = tuple(f.policy for f in known.files if f.policy is not None)
            # a key's policy is mandatory; an alias has no resource policy of its own
            required = action.startswith("kms:") and _KMS_KEY.fullmatch(resource) is not None
            tags = known.tags
        else:
            named = arn_account(resource)
            account = named or stated or caller.account
            policies = ()
            # A role's trust policy and a KMS key's policy are mandatory: a role or key the
            # store does not hold has one pdp cannot see, so nothing can be granted on it.
            required = (action in _TRUST_ACTIONS and _ROLE_ARN.fullmatch(resource) is not None) or (
                action.startswith("kms:") and _KMS_KEY.fullmatch(resource) is not None
            )
            tags = {}
            if named is not None:
                keys["aws:resourceaccount"] = named
    account_known = trust is not None or known is not None or "aws:resourceaccount" in keys
    if trust is not None or known is not None:
        keys["aws:resourceaccount"] = account
        sealed.add("aws:resourcetag/")
        for name, value in tags.items():
            keys[f"aws:resourcetag/{name}"] = value
    if world.org is not None:
        # The organization's tree is the whole truth about its members: an account outside
        # it is in no organization pdp knows, and the caller may not claim otherwise.
        if caller.kind in ("user", "root", "session"):
            keys.update(world.org_keys(caller.account, "principal"))
            sealed.update(("aws:principalorgid", "aws:principalorgpaths"))
        if account_known:
            keys.update(world.org_keys(account, "resource"))
            sealed.update(("aws:resourceorgid", "aws:resourceorgpaths"))
    scp = None
    if caller.kind in ("user", "root", "session") and not service_linked:
        scp = world.scp_levels(caller.account)
    rcp = None
    if not service_linked and action.partition(":")[0] in RCP_SERVICES:
        rcp = world.rcp_levels(account)
    sealed.update(keys)
    return rcp, scp, policies, required, account == caller.account, keys, frozenset(sealed)
