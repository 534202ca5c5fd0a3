"""The principal -> group -> policy index of one store version.

Each user's effective policies (its managed policies, its inline policies, then those of each of
its groups) are resolved at load time into one tuple; the `PolicySet` that indexes their
statements by service is built on a user's first request and shared by every user with the same
policies. A decision therefore costs one dict lookup plus the user's own statements, whatever the
size of the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

from pdp.errors import Diagnostic
from pdp.language import Policy, PolicySet
from pdp.model import Decision, MatchedStatement, Principal
from pdp.store.aws_managed import (
    AWS_MANAGED_PREFIX,
    ManagedPolicy,
    aws_managed_policies,
    builtin_managed,
)
from pdp.store.shards import MASK, Shards
from pdp.store.version import StoreVersion, User

__all__ = [
    "ACCOUNT_GRANT",
    "AWS_MANAGED_PREFIX",
    "Index",
    "UserEntry",
    "available_managed",
    "aws_managed_policies",
]


# What `AllowUsersToChangePassword: true` in account.json grants every user: IAM applies it at the
# account level, not as a policy (IAM API Reference, PasswordPolicy; User Guide, "Permit IAM users
# to change their own passwords"): iam:ChangePassword on the user's own ARN only, and
# iam:GetAccountPasswordPolicy (an action with no resource type, so on any resource, as AWS's
# IAMUserChangePassword policy grants it on "*"). A decision it allows names this statement.
ACCOUNT_GRANT = MatchedStatement(
    policy="account.json", statement=0, sid="AllowUsersToChangePassword", effect="Allow"
)
_CHANGE_PASSWORD = "iam:changepassword"
_GET_PASSWORD_POLICY = "iam:getaccountpasswordpolicy"


def available_managed(version: StoreVersion | None = None) -> dict[str, ManagedPolicy]:
    """The AWS managed policies a version may attach, by ARN: the built-ins, overridden by
    (and added to from) the version's aws-managed/ folder."""
    if version is None or not version.aws_managed:
        return builtin_managed()
    return {**builtin_managed(), **version.aws_managed}


def _same(new: tuple[Policy, ...] | None, old: tuple[Policy, ...]) -> bool:
    return (
        new is not None
        and len(new) == len(old)
        and all(a is b for a, b in zip(new, old, strict=True))
    )


def _policy_name(ref: str) -> str:
    """The name in a policy reference: the name itself, or the last part of its ARN."""
    return ref.rsplit("/", 1)[-1]


def _touches(refs: tuple[str, ...], changed: set[str]) -> bool:
    """Whether a user's policy references name a customer policy that changed or went away
    (an AWS managed one of the same name counts too: a needless rebuild, never a stale one)."""
    return any(_policy_name(ref) in changed for ref in refs)


class UserEntry:
    """A user of the index: its record, its effective policies, and (lazily) its PolicySet."""

    __slots__ = ("user", "arn", "policies", "principal", "policy_set")

    def __init__(self, user: User, arn: str, policies: tuple[Policy, ...]) -> None:
        self.user = user
        self.arn = arn
        self.policies = policies
        self.principal: Principal | None = None
        self.policy_set: PolicySet | None = None


def _folded_keys(entry: UserEntry) -> tuple[tuple[str, str], tuple[str, str]]:
    """The lower-cased name and ARN of a user, each with its stored name: the case-insensitive
    index. Two users never share one (the store refuses names differing only in case)."""
    name = entry.user.name
    return (name.lower(), name), (entry.arn.lower(), name)


@dataclass(frozen=True, slots=True)
class Counts:
    users: int
    groups: int
    policies: int


class Index:
    """Resolves a principal (user name, user ARN or root ARN) to what decides for it.

    Built from `previous` (the index of the version serving now), it reuses the entry of every
    user whose file, groups and policies are all the very objects they were (store.read_version
    reuses the objects of unchanged files), and resolves only the others, as a cold build
    would: the result is the same, the cost is that of the change (docs/store.md, Reloading).
    """

    def __init__(self, version: StoreVersion, previous: Index | None = None) -> None:
        self.version = version.name
        self.account = version.account.account_id
        self.root_enabled = version.account.root_enabled
        self.users_change_password = (
            version.account.password_policy.get("AllowUsersToChangePassword") is True
        )
        self._account_grant = Decision(
            "Allow", "allowed", (ACCOUNT_GRANT,), policy_version=version.name
        )
        self.problems: list[Diagnostic] = []
        self.counts = Counts(len(version.users), len(version.groups), len(version.policies))
        self._customer = version.policies
        self._aws = available_managed(version)
        self._sets: dict[tuple[int, ...], PolicySet] = {}
        self._group_policies: dict[str, tuple[Policy, ...]] = {}
        for group in version.groups.values():
            attached = self._resolve(group.file, group.policies)
            self._group_policies[group.name] = attached + group.inline_policies
        if previous is not None and (
            previous.account != self.account or version.changed_users is None
        ):
            previous = None  # every ARN changes with the account; or no delta to apply
        if previous is None:
            entries = [self._entry(user) for user in version.users.values()]
            self._users: Shards[UserEntry] = Shards((e.user.name, e) for e in entries)
            self._arns: Shards[str] = Shards((e.arn, e.user.name) for e in entries)
            self._folded: Shards[str] = Shards(
                chain.from_iterable(_folded_keys(e) for e in entries)
            )
        else:
            self._update(version, previous)
        self._buckets = self._users.buckets  # for resolve(): one lookup, no method call
        self._root_arn = f"arn:aws:iam::{self.account}:root"
        self._folded_root_arn = self._root_arn.lower()

    def _entry(self, user: User) -> UserEntry:
        policies = list(self._resolve(user.file, user.policies)) + list(user.inline_policies)
        for i, name in enumerate(user.groups):
            attached = self._group_policies.get(name)
            if attached is None:
                self._problem(user.file, f"groups[{i}]", f'group "{name}" does not exist')
                continue
            policies.extend(attached)
        unique = tuple({id(p): p for p in policies}.values())  # a policy counts once
        arn = f"arn:aws:iam::{self.account}:user{user.path}{user.name}"
        return UserEntry(user, arn, unique)

    def _update(self, version: StoreVersion, previous: Index) -> None:
        """Copy the tables of `previous` and rebuild the entries of the users that changed
        (`version.changed_users`) or whose groups or attached policies changed; the others
        stay as they were. The tables come out as a cold build makes them, order included."""
        changed_groups = {
            name
            for name, attached in previous._group_policies.items()
            if not _same(self._group_policies.get(name), attached)
        }
        changed_policies = {
            name
            for name, policy in previous._customer.items()
            if version.policies.get(name) is not policy
        }
        if previous._aws is not self._aws:  # an AWS managed policy came, went or changed
            for arn in previous._aws.keys() | self._aws.keys():
                before, now = previous._aws.get(arn), self._aws.get(arn)
                if before is None or now is None or before.policy is not now.policy:
                    changed_policies.add(_policy_name(arn))
        affected = set(version.changed_users or ())
        if changed_groups or changed_policies:
            for name, member in version.users.unordered_items():
                if not changed_groups.isdisjoint(member.groups) or (
                    member.policies and _touches(member.policies, changed_policies)
                ):
                    affected.add(name)
        entries: dict[str, UserEntry] = {}
        arns: dict[str, str] = {}
        folded: dict[str, str] = {}
        gone_arns: list[str] = []
        gone_folded: list[str] = []
        for name in affected:
            old = previous._users.get(name)
            if old is not None:
                gone_arns.append(old.arn)
                gone_folded.extend(key for key, _ in _folded_keys(old))
            user = version.users.get(name)
            if user is not None:
                entry = entries[name] = self._entry(user)
                arns[entry.arn] = name
                folded.update(_folded_keys(entry))
        gone = [name for name in affected if name not in entries]
        self._users = previous._users.evolve(entries, gone)
        self._arns = previous._arns.evolve(arns, [a for a in gone_arns if a not in arns])
        # deletions go first in evolve: a user renamed to another case keeps its folded keys
        self._folded = previous._folded.evolve(folded, [k for k in gone_folded if k not in folded])

    def _problem(self, file: str, path: str, message: str) -> None:
        self.problems.append(Diagnostic("missing_reference", path, message, file))

    def resolve_policies(
        self, file: str, refs: tuple[str, ...], *, where: str = "policies", quiet: bool = False
    ) -> tuple[Policy, ...]:
        """The policies that references (names, customer ARNs of this account, AWS managed
        ARNs) name, for a file's field `where`; each missing one is a problem of the index
        (unless `quiet`: a request's session policy ARNs are the caller's, not the store's)."""
        return self._resolve(file, refs, where, [] if quiet else self.problems)

    def _resolve(
        self,
        file: str,
        refs: tuple[str, ...],
        field: str = "policies",
        problems: list[Diagnostic] | None = None,
    ) -> tuple[Policy, ...]:
        sink = self.problems if problems is None else problems

        def problem(file: str, path: str, message: str) -> None:
            sink.append(Diagnostic("missing_reference", path, message, file))

        out = []
        own_prefix = f"arn:aws:iam::{self.account}:policy/"
        for i, ref in enumerate(refs):
            where = f"{field}[{i}]" if field == "policies" else field
            policy: Policy | None
            if ref.startswith(AWS_MANAGED_PREFIX):
                managed = self._aws.get(ref)
                if managed is None:
                    known = ", ".join(a[len(AWS_MANAGED_PREFIX) :] for a in builtin_managed())
                    problem(
                        file,
                        where,
                        f'unknown AWS managed policy "{ref}" (built in: {known}; any other'
                        " goes in the version's aws-managed/<path>/<Name>.json)",
                    )
                    continue
                policy = managed.policy
            elif ref.startswith("arn:"):
                if not ref.startswith(own_prefix):
                    problem(file, where, f'policy "{ref}" is not in account {self.account}')
                    continue
                policy = self._customer.get(_policy_name(ref))
            else:
                policy = self._customer.get(ref)
            if policy is None:
                problem(file, where, f'policy "{ref}" does not exist in policies/')
                continue
            out.append(policy)
        return tuple(out)

    def resolve(self, principal: str) -> UserEntry | None:
        """The user entry for a user name or user ARN, in any case (IAM user names are not
        distinguished by case: `JOHN.DOE` and `arn:aws:iam::<account>:user/JOHN.DOE` are the
        user `john.doe`); None for anything else (the root ARN, in any case, included:
        `is_root` asks for that). The entry carries the name and ARN as stored.

        O(1): the exact spelling is one dict lookup; another case one more, in `_folded`
        (lower-cased names and ARNs, built with the tables). A folded name never collides
        with a folded ARN: names have no ":" (docs/store.md, Principals). Only ASCII spellings
        fold, as IAM's names and their case are ASCII."""
        entry = self._buckets[hash(principal) & MASK].get(principal)
        if entry is not None:
            return entry
        if principal.startswith("arn:"):
            name = self._arns.get(principal)
            if name is not None:
                return self._users[name]
        if not principal.isascii():  # stored names are ASCII; str.lower() folds more (K -> k)
            return None
        name = self._folded.get(principal.lower())
        return None if name is None else self._users.get(name)

    def account_grant(self, entry: UserEntry, action: str, resource: str) -> Decision | None:
        """The Allow that the account's `AllowUsersToChangePassword` gives `entry` for a request
        (`action` lower-cased), or None: the setting is off, or the request is not the user's
        own iam:ChangePassword (resource exactly its ARN) nor iam:GetAccountPasswordPolicy.
        The caller asks only after the user's policies gave an implicit Deny without errors: an
        explicit Deny still wins, and an error still fails closed."""
        if not self.users_change_password:
            return None
        if action == _GET_PASSWORD_POLICY or (action == _CHANGE_PASSWORD and resource == entry.arn):
            return self._account_grant
        return None

    def is_root(self, principal: str) -> bool:
        """Whether `principal` is this account's root ARN, exactly as AWS writes it."""
        return principal == self._root_arn

    def is_root_any_case(self, principal: str) -> bool:
        """Whether `principal` is this account's root ARN in some case: never a user."""
        return principal.lower() == self._folded_root_arn

    def principal(self, entry: UserEntry) -> Principal:
        if entry.principal is None:
            user = entry.user
            entry.principal = Principal.user(
                user.name, account=self.account, tags=user.tags, path=user.path
            )
        return entry.principal

    def policy_set(self, entry: UserEntry) -> PolicySet:
        """The user's PolicySet, built on first use and shared between users with equal policies.

        An entry reused from the previous version still holds that version's set: the same
        policies, stamped with the other version, so it is re-stamped (its statement index is
        shared, not rebuilt). Concurrency: two threads may build the same set at once; both
        results are equal and either may win, so no lock is needed.
        """
        found = entry.policy_set
        if found is None or found.version != self.version:
            key = tuple(id(p) for p in entry.policies)
            mine = self._sets.get(key)
            if mine is None:
                if found is None:
                    built = PolicySet(entry.policies, self.version)
                else:
                    built = found.for_version(self.version)
                mine = self._sets.setdefault(key, built)
            entry.policy_set = found = mine
        return found

    def root_principal(self) -> Principal:
        return Principal.root(account=self.account)

    def users(self) -> list[UserEntry]:
        return list(self._users.values())
