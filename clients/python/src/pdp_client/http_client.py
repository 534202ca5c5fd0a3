"""The HTTP sidecar client: a keep-alive connection pool (urllib3), JSON in and out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import urllib3

from pdp_client._common import (
    backoff,
    check_policy,
    checked_results,
    fail_closed,
    http_error,
    request_dict,
)
from pdp_client.errors import PdpRequestError, PdpUnavailable
from pdp_client.model import Decision

__all__ = ["HttpClient"]


class HttpClient:
    """`HttpClient("http://127.0.0.1:8180", timeout=0.5, retries=2, on_unavailable="deny")`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8180",
        *,
        timeout: float = 1.0,
        retries: int = 2,
        on_unavailable: str = "deny",
        pool_size: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.on_unavailable = check_policy(on_unavailable)
        self._pool = urllib3.PoolManager(maxsize=pool_size, retries=False)

    def _post(self, path: str, body: Any) -> Any:
        data = json.dumps(body).encode()
        delays = backoff(self.retries)
        while True:
            try:
                response = self._pool.request(
                    "POST",
                    self.base_url + path,
                    body=data,
                    headers={"Content-Type": "application/json"},
                    timeout=urllib3.Timeout(total=self.timeout),
                )
            except urllib3.exceptions.HTTPError as exc:
                problem, code = f"{type(exc).__name__}: {exc}", None
                retry = not isinstance(exc, urllib3.exceptions.TimeoutError)
            else:
                if response.status == 200:
                    try:
                        return json.loads(response.data)
                    except ValueError:
                        raise PdpUnavailable(f"{self.base_url}: the answer is not JSON") from None
                code, detail = http_error(response.data)
                if response.status == 400:
                    raise PdpRequestError(detail, code)
                problem = f"HTTP {response.status}: {detail}"
                retry = response.status == 503  # not ready yet (still loading), or busy
            delay = next(delays, None) if retry else None
            if delay is None:
                raise PdpUnavailable(f"{self.base_url}: {problem}", code)
            time.sleep(delay)

    def is_authorized(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        principal_type: str = "user",
    ) -> Decision:
        """Decide one request; `principal_type="root"` (with the root ARN) asks for the root."""
        body = request_dict(principal, action, resource, context, principal_type)
        try:
            answer = self._post("/v1/is-authorized", body)
            if not isinstance(answer, dict):
                raise PdpUnavailable(f"{self.base_url}: the answer is not a JSON object")
            return _decision(answer, self.base_url)
        except PdpUnavailable as exc:
            return fail_closed(self.on_unavailable, exc)

    def batch_is_authorized(self, requests: Iterable[Mapping[str, Any]]) -> list[Decision]:
        items = [dict(r) for r in requests]
        try:
            answer = self._post("/v1/batch-is-authorized", {"requests": items})
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
                raise PdpUnavailable(f"{self.base_url}: the answer has no list of results")
            checked = checked_results(results, len(items), self.base_url)
            return [_decision(r, self.base_url) for r in checked]
        except PdpUnavailable as exc:
            return [fail_closed(self.on_unavailable, exc)] * len(items)

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decision(body: dict[str, Any], where: str) -> Decision:
    try:
        return Decision.from_dict(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise PdpUnavailable(f"{where}: a malformed decision ({exc!r})") from None
