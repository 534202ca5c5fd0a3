"""IAM's name rules (pdp.names), table by table, and the doors that use them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import pdp
from pdp.names import (
    MAX_GROUP_NAME,
    MAX_PATH,
    MAX_POLICY_NAME,
    MAX_ROLE_NAME,
    MAX_USER_NAME,
    is_account_id,
    is_group_name,
    is_path,
    is_policy_name,
    is_role_name,
    is_user_name,
)

# What every IAM name (user, group, role, policy) takes and refuses, whatever its length limit.
NAME_OK = ["bob", "Bob", "john.doe", "a+b=c,d.e@f_g-h", "0", "_", "x" * 64]
NAME_BAD = ["", "bób", "with space", "a/b", "a*b", "a?b", "a:b", "tab\t", "new\nline", "é", None, 7]

LENGTHS: list[tuple[Callable[[object], bool], int]] = [
    (is_user_name, MAX_USER_NAME),
    (is_role_name, MAX_ROLE_NAME),
    (is_group_name, MAX_GROUP_NAME),
    (is_policy_name, MAX_POLICY_NAME),
]


def test_the_limits_are_awss() -> None:
    assert (MAX_USER_NAME, MAX_ROLE_NAME, MAX_GROUP_NAME, MAX_POLICY_NAME, MAX_PATH) == (
        64,
        64,
        128,
        128,
        512,
    )


@pytest.mark.parametrize(("check", "longest"), LENGTHS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("name", NAME_OK)
def test_names_take_alphanumerics_and_iams_punctuation(
    check: Callable[[object], bool], longest: int, name: str
) -> None:
    assert check(name)


@pytest.mark.parametrize(("check", "longest"), LENGTHS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("name", NAME_BAD)
def test_names_refuse_anything_else(
    check: Callable[[object], bool], longest: int, name: object
) -> None:
    assert not check(name)


@pytest.mark.parametrize(("check", "longest"), LENGTHS, ids=lambda v: getattr(v, "__name__", v))
def test_names_stop_at_their_length(check: Callable[[object], bool], longest: int) -> None:
    assert check("n" * longest)
    assert not check("n" * (longest + 1))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("123456789012", True),
        ("000000000000", True),
        ("12345678901", False),
        ("1234567890123", False),
        ("12345678901a", False),
        ("１２３４５６７８９０１２", False),  # full-width digits are not ASCII digits
        ("123456789012\n", False),
        (123456789012, False),
        (None, False),
    ],
)
def test_account_ids_are_12_ascii_digits(value: object, ok: bool) -> None:
    assert is_account_id(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("/", True),
        ("/eng/", True),
        ("/division_abc/subdivision_xyz/", True),
        ("/a!~\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}/", True),  # printable ASCII, \x21 to \x7e
        ("///", True),
        ("/" + "p" * (MAX_PATH - 2) + "/", True),
        ("/" + "p" * (MAX_PATH - 1) + "/", False),  # 513 characters
        ("//", False),  # AWS's pattern wants something between the slashes
        ("", False),
        ("eng/", False),
        ("/eng", False),
        ("/with space/", False),
        ("/tab\t/", False),
        ("/del\x7f/", False),
        ("/é/", False),
        (None, False),
    ],
)
def test_paths(value: object, ok: bool) -> None:
    assert is_path(value) is ok


# --- through the Python API ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "n" * 65}, "invalid user name"),
        ({"name": "bób"}, "invalid user name"),
        ({"account": "12345"}, "account must be 12 digits"),
        ({"path": "/" + "p" * 511 + "/"}, "invalid path"),
        ({"path": "//"}, "invalid path"),
    ],
)
def test_principal_user_refuses_what_iam_refuses(kwargs: dict[str, str], message: str) -> None:
    args = {"name": "bob", "account": "123456789012", **kwargs}
    name, account = args.pop("name"), args.pop("account")
    with pytest.raises(pdp.RequestError, match=message):
        pdp.Principal.user(name, account=account, **args)


def test_principal_user_takes_the_longest_iam_allows() -> None:
    user = pdp.Principal.user("n" * 64, account="123456789012", path="/" + "p" * 510 + "/")
    assert user.arn == "arn:aws:iam::123456789012:user/" + "p" * 510 + "/" + "n" * 64
