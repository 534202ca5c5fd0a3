"""Errors of the clients.

PdpClientError        base
├── PdpUnavailable    pdp could not be reached in time (after the retries)
└── PdpRequestError   pdp refused the request as malformed (HTTP 400, INVALID_ARGUMENT)

`code` is pdp's stable error code when pdp answered with one (docs/serving.md, "Error codes"):
"invalid_request" or "body_too_large" for a PdpRequestError; "not_ready", "busy", "internal",
... for a PdpUnavailable; None when pdp was not reached or gave no code.
"""

from __future__ import annotations

__all__ = ["PdpClientError", "PdpRequestError", "PdpUnavailable"]


class PdpClientError(Exception):
    """Base class of the client errors; `code` is pdp's error code, if it sent one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PdpUnavailable(PdpClientError):
    """pdp could not be reached, or did not answer in time, after the retries."""


class PdpRequestError(PdpClientError):
    """pdp refused the request as malformed; the message names the field."""

    def __init__(self, message: str, code: str | None = "invalid_request") -> None:
        super().__init__(message, code)
