"""IAM's credential report of a store version (`pdp audit --credential-report`), as CSV.

The columns, their order and their placeholders are AWS's ("Getting credential reports for
your AWS account", IAM User Guide), so that tools written for AWS's CSV read this one:
`N/A` where a credential does not exist or a value does not apply, `not_supported` for the
root user's password columns that IAM does not report, `no_information` where a credential
exists but its use (or, in pdp, its creation time) is not known. docs/audit.md lists them.
Invariant: every row has exactly the header's cells, and every cell is escaped (pdp.text),
since the report is read on terminals and in spreadsheets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pdp.store import AccessKey, SigningCertificate, StoreVersion, User
from pdp.text import printable

__all__ = ["COLUMNS", "credential_report"]

NA, NOT_SUPPORTED, NO_INFORMATION = "N/A", "not_supported", "no_information"
ROOT_ROW = "<root_account>"


def _key_columns(n: int) -> list[str]:
    return [
        f"access_key_{n}_active",
        f"access_key_{n}_last_rotated",
        f"access_key_{n}_last_used_date",
        f"access_key_{n}_last_used_region",
        f"access_key_{n}_last_used_service",
    ]


COLUMNS: tuple[str, ...] = (
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    *_key_columns(1),
    *_key_columns(2),
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _keys(keys: Sequence[AccessKey]) -> list[str]:
    """Ten cells for the first two keys (the store refuses a third); a key never used has
    N/A for its date, region and service, as has a key used with no region recorded."""
    cells: list[str] = []
    for n in range(2):
        key = keys[n] if n < len(keys) else None
        if key is None:
            cells += ["false", NA, NA, NA, NA]
            continue
        used = key.last_used is not None
        cells += [
            _flag(key.status == "Active"),
            key.created,
            key.last_used or NA,
            (key.last_used_region or NA) if used else NA,
            (key.last_used_service or NA) if used else NA,
        ]
    return cells


def _certs(certs: Sequence[SigningCertificate]) -> list[str]:
    cells: list[str] = []
    for n in range(2):
        cert = certs[n] if n < len(certs) else None
        cells += [_flag(cert.status == "Active"), cert.uploaded] if cert else ["false", NA]
    return cells


def _next_rotation(user: User, max_age: object) -> str:
    """When the password policy's MaxPasswordAge makes the password expire; N/A with no
    password, no expiry (absent or 0) or no known change date to count from."""
    if not user.console_access or not isinstance(max_age, int) or max_age <= 0:
        return NA
    if user.password_last_changed is None:
        return NA
    changed = datetime.fromisoformat(user.password_last_changed.replace("Z", "+00:00"))
    if changed.tzinfo is None:
        changed = changed.replace(tzinfo=UTC)
    return (changed + timedelta(days=max_age)).isoformat()


def _user_row(user: User, account: str, max_age: object) -> list[str]:
    password = user.console_access
    last_used = user.password_last_used or (NO_INFORMATION if password else NA)
    return [
        user.name,
        f"arn:aws:iam::{account}:user{user.path}{user.name}",
        user.created or NO_INFORMATION,
        _flag(password),
        last_used,
        (user.password_last_changed or NO_INFORMATION) if password else NA,
        _next_rotation(user, max_age),
        _flag(user.mfa_enabled),
        *_keys(user.access_keys),
        *_certs(user.signing_certificates),
    ]


def credential_report(version: StoreVersion, account: str | None = None) -> str:
    """The report: the header, then per account its root row and one row a user in name order.

    A multi-account version reports every account (by account id), or only `account`; AWS
    writes one report per account, and the `arn` column names the account of each row. An
    `account` the version does not hold is a ValueError naming the accounts it does."""
    accounts = version.accounts or {version.account.account_id: version}
    if account is not None:
        if account not in accounts:
            known = ", ".join(sorted(accounts))
            raise ValueError(f'account "{account}" is not in this store (its accounts: {known})')
        accounts = {account: accounts[account]}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for account_id in sorted(accounts):
        for row in _account_rows(accounts[account_id]):
            assert len(row) == len(COLUMNS)  # the invariant above
            writer.writerow([printable(cell) for cell in row])
    return out.getvalue()


def _account_rows(version: StoreVersion) -> list[list[str]]:
    """One account's root row, then its users' rows in name order."""
    acct = version.account
    account = acct.account_id
    root = [
        ROOT_ROW,
        f"arn:aws:iam::{account}:root",
        acct.created or NO_INFORMATION,
        NOT_SUPPORTED,
        acct.root_password_last_used or NO_INFORMATION,
        NOT_SUPPORTED,
        NOT_SUPPORTED,
        _flag(acct.root_mfa_enabled),
        *_keys(acct.root_access_keys),
        *_certs(()),
    ]
    rows = [root]
    max_age = acct.password_policy.get("MaxPasswordAge")
    for user in sorted(version.users.values(), key=lambda u: u.name):
        rows.append(_user_row(user, account, max_age))
    return rows
