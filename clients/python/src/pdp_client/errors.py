"""Errors of the clients.

PdpClientError        base
├── PdpUnavailable    pdp could not be reached in time (after the retries)
└── PdpRequestError   pdp refused the request as malformed (HTTP 400, INVALID_ARGUMENT)
"""

from __future__ import annotations

__all__ = ["PdpClientError", "PdpRequestError", "PdpUnavailable"]


class PdpClientError(Exception):
    """Base class of the client errors."""


class PdpUnavailable(PdpClientError):
    """pdp could not be reached, or did not answer in time, after the retries."""


class PdpRequestError(PdpClientError):
    """pdp refused the request as malformed; the message names the field."""
