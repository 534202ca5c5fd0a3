"""The HTTP sidecar client: a keep-alive connection pool (urllib3), JSON in and out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import urllib3

from pdp_client._common import backoff, check_policy, fail_closed, request_dict
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
                problem = f"{type(exc).__name__}: {exc}"
                retry = not isinstance(exc, urllib3.exceptions.TimeoutError)
            else:
                if response.status == 200:
                    return json.loads(response.data)
                detail = _error(response.data)
                if response.status == 400:
                    raise PdpRequestError(detail)
                problem = f"HTTP {response.status}: {detail}"
                retry = response.status == 503  # not ready yet: pdp is still loading
            delay = next(delays, None) if retry else None
            if delay is None:
                raise PdpUnavailable(f"{self.base_url}: {problem}")
            time.sleep(delay)

    def is_authorized(
        self,
        principal: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        body = request_dict(principal, action, resource, context)
        try:
            return Decision.from_dict(self._post("/v1/is-authorized", body))
        except PdpUnavailable as exc:
            return fail_closed(self.on_unavailable, exc)

    def batch_is_authorized(self, requests: Iterable[Mapping[str, Any]]) -> list[Decision]:
        items = [dict(r) for r in requests]
        try:
            answer = self._post("/v1/batch-is-authorized", {"requests": items})
        except PdpUnavailable as exc:
            return [fail_closed(self.on_unavailable, exc)] * len(items)
        return [Decision.from_dict(r) for r in answer["results"]]

    def close(self) -> None:
        self._pool.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(data: bytes) -> str:
    try:
        return str(json.loads(data).get("error", ""))
    except (ValueError, AttributeError):
        return data[:200].decode(errors="replace")
