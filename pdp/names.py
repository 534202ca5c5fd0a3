"""IAM's name rules, once: account ids, user, group, role and policy names, and paths.

From AWS's documentation:

- "IAM and AWS STS quotas, name requirements, and character limits"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): names of users,
  groups, roles and policies are alphanumeric plus `+ = , . @ _ -`; paths begin and end with
  "/"; a user name is at most 64 characters, a role name 64, a group name 128, a policy name
  128, a path 512.
- The IAM API reference gives them as patterns: `UserName` and `RoleName` match
  `[\\w+=,.@-]+` (API_CreateUser.html, API_CreateRole.html); `Path` is 1 to 512 characters
  matching `(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)` (API_CreateUser.html): "/" alone, or
  printable ASCII other than space between two slashes (so "//" is not a path).
- An AWS account id is 12 digits.

Every check takes any value and is False for what is not a str; names are ASCII (`\\w` is
[A-Za-z0-9_] here, not Unicode letters).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "MAX_GROUP_NAME",
    "MAX_PATH",
    "MAX_POLICY_NAME",
    "MAX_ROLE_NAME",
    "MAX_USER_NAME",
    "is_account_id",
    "is_group_name",
    "is_path",
    "is_policy_name",
    "is_role_name",
    "is_session_name",
    "is_user_name",
]

MAX_USER_NAME: Final = 64
MAX_ROLE_NAME: Final = 64
MAX_GROUP_NAME: Final = 128
MAX_POLICY_NAME: Final = 128
MAX_PATH: Final = 512

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
_PATH = re.compile(r"/|/[\x21-\x7e]+/")


def _name(value: object, longest: int) -> bool:
    return isinstance(value, str) and len(value) <= longest and _NAME.fullmatch(value) is not None


def is_account_id(value: object) -> bool:
    """12 ASCII digits, as "123456789012"."""
    return isinstance(value, str) and _ACCOUNT_ID.fullmatch(value) is not None


def is_user_name(value: object) -> bool:
    """1 to 64 of `[A-Za-z0-9_+=,.@-]`."""
    return _name(value, MAX_USER_NAME)


def is_role_name(value: object) -> bool:
    """1 to 64 of `[A-Za-z0-9_+=,.@-]`."""
    return _name(value, MAX_ROLE_NAME)


def is_session_name(value: object) -> bool:
    """A role session name (sts:RoleSessionName): 2 to 64 of `[A-Za-z0-9_+=,.@-]`."""
    return _name(value, 64) and len(value) >= 2  # type: ignore[arg-type]


def is_group_name(value: object) -> bool:
    """1 to 128 of `[A-Za-z0-9_+=,.@-]`."""
    return _name(value, MAX_GROUP_NAME)


def is_policy_name(value: object) -> bool:
    """1 to 128 of `[A-Za-z0-9_+=,.@-]`: a managed policy's name, or an inline policy's."""
    return _name(value, MAX_POLICY_NAME)


def is_path(value: object) -> bool:
    """ "/" or "/.../" with printable ASCII (no space) between, at most 512 characters."""
    return isinstance(value, str) and len(value) <= MAX_PATH and _PATH.fullmatch(value) is not None
