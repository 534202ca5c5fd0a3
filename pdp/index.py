"""The principal -> group -> policy index of one store version.

Each user's effective policies (its managed policies, its inline policies, then those of each of
its groups) are resolved at load time into one tuple; the `PolicySet` that indexes their
statements by service is built on a user's first request and shared by every user with the same
policies. A decision therefore costs one dict lookup plus the user's own statements, whatever the
size of the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from pdp.errors import Diagnostic
from pdp.evaluate import PolicySet
from pdp.model import Principal
from pdp.policy import Policy, parse_policy
from pdp.store import StoreVersion, User

__all__ = ["AWS_MANAGED_PREFIX", "ROOT", "Index", "UserEntry", "aws_managed_policies"]

AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"


@cache
def aws_managed_policies() -> dict[str, Policy]:
    """The built-in AWS managed policies that a store may attach by ARN, by name."""
    out = {}
    for item in resources.files("pdp.managed").iterdir():
        if item.name.endswith(".json"):
            name = item.name[: -len(".json")]
            out[name] = parse_policy(item.read_bytes(), name=AWS_MANAGED_PREFIX + name)
    return out


class _Root:
    __slots__ = ()


ROOT: Final = _Root()


class UserEntry:
    """A user of the index: its record, its effective policies, and (lazily) its PolicySet."""

    __slots__ = ("user", "arn", "policies", "principal", "policy_set")

    def __init__(self, user: User, arn: str, policies: tuple[Policy, ...]) -> None:
        self.user = user
        self.arn = arn
        self.policies = policies
        self.principal: Principal | None = None
        self.policy_set: PolicySet | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    users: int
    groups: int
    policies: int


class Index:
    """Resolves a principal (user name, user ARN or root ARN) to what decides for it."""

    def __init__(self, version: StoreVersion) -> None:
        self.version = version.name
        self.account = version.account.account_id
        self.root_enabled = version.account.root_enabled
        self.problems: list[Diagnostic] = []
        self.counts = Counts(len(version.users), len(version.groups), len(version.policies))
        self._customer = version.policies
        self._sets: dict[tuple[int, ...], PolicySet] = {}
        group_policies: dict[str, tuple[Policy, ...]] = {}
        for group in version.groups.values():
            attached = self._resolve(group.file, group.policies)
            group_policies[group.name] = attached + group.inline_policies
        self._users: dict[str, UserEntry] = {}
        self._arns: dict[str, str] = {}
        for user in version.users.values():
            policies = list(self._resolve(user.file, user.policies)) + list(user.inline_policies)
            for i, name in enumerate(user.groups):
                if name not in group_policies:
                    self._problem(user.file, f"groups[{i}]", f'group "{name}" does not exist')
                    continue
                policies.extend(group_policies[name])
            unique = tuple({id(p): p for p in policies}.values())  # a policy counts once
            arn = f"arn:aws:iam::{self.account}:user{user.path}{user.name}"
            self._users[user.name] = UserEntry(user, arn, unique)
            self._arns[arn] = user.name
        self._root_arn = f"arn:aws:iam::{self.account}:root"

    def _problem(self, file: str, path: str, message: str) -> None:
        self.problems.append(Diagnostic("missing_reference", path, message, file))

    def _resolve(self, file: str, refs: tuple[str, ...]) -> tuple[Policy, ...]:
        out = []
        own_prefix = f"arn:aws:iam::{self.account}:policy/"
        for i, ref in enumerate(refs):
            where = f"policies[{i}]"
            if ref.startswith(AWS_MANAGED_PREFIX):
                policy = aws_managed_policies().get(ref[len(AWS_MANAGED_PREFIX) :])
                if policy is None:
                    known = ", ".join(sorted(aws_managed_policies()))
                    self._problem(
                        file, where, f'unknown AWS managed policy "{ref}" (known: {known})'
                    )
                    continue
            elif ref.startswith("arn:"):
                if not ref.startswith(own_prefix):
                    self._problem(file, where, f'policy "{ref}" is not in account {self.account}')
                    continue
                policy = self._customer.get(ref.rsplit("/", 1)[-1])
            else:
                policy = self._customer.get(ref)
            if policy is None:
                self._problem(file, where, f'policy "{ref}" does not exist in policies/')
                continue
            out.append(policy)
        return tuple(out)

    def resolve(self, principal: str) -> UserEntry | _Root | None:
        """The user entry for a name or user ARN, ROOT for the root ARN, None if unknown."""
        entry = self._users.get(principal)
        if entry is not None:
            return entry
        if principal.startswith("arn:"):
            if principal == self._root_arn:
                return ROOT
            name = self._arns.get(principal)
            if name is not None:
                return self._users[name]
        return None

    def principal(self, entry: UserEntry) -> Principal:
        if entry.principal is None:
            user = entry.user
            entry.principal = Principal.user(
                user.name, account=self.account, tags=user.tags, path=user.path
            )
        return entry.principal

    def policy_set(self, entry: UserEntry) -> PolicySet:
        """The user's PolicySet, built on first use and shared between users with equal policies.

        Concurrency: two threads may build the same set at once; both results are equal and
        either may win, so no lock is needed.
        """
        found = entry.policy_set
        if found is None:
            key = tuple(id(p) for p in entry.policies)
            found = self._sets.get(key)
            if found is None:
                found = self._sets.setdefault(key, PolicySet(entry.policies, self.version))
            entry.policy_set = found
        return found

    def root_principal(self) -> Principal:
        return Principal.root(account=self.account)

    def users(self) -> list[UserEntry]:
        return list(self._users.values())
