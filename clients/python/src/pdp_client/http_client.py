"""The HTTP sidecar client: a keep-alive connection pool (urllib3), JSON in and out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3

from pdp_client._common import Retry, SyncClient, checked_results, http_error, retrying
from pdp_client.errors import PdpRequestError, PdpUnavailable
from pdp_client.model import Decision

__all__ = ["HttpClient"]


class HttpClient(SyncClient):
    """`HttpClient("http://127.0.0.1:8180", timeout=0.5, retries=2, on_unavailable="deny")`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8180",
        *,
        timeout: float = 1.0,
        retries: int = 2,
        on_unavailable: str = "deny",
        pool_size: int = 8,
        ca: str | None = None,
        cert: str | None = None,
        key: str | None = None,
    ) -> None:
        """For an https:// `base_url`: `ca` verifies pdp's certificate (None: the system's
        roots), `cert` and `key` are the client's own (mTLS). PEM files."""
        super().__init__(timeout=timeout, retries=retries, on_unavailable=on_unavailable)
        if (cert is None) != (key is None):
            raise ValueError("cert and key: give both (a client certificate) or neither")
        if (ca or cert) and not base_url.startswith("https://"):
            raise ValueError("ca, cert and key are for an https:// base_url (this one is plain)")
        self.base_url = base_url.rstrip("/")
        self._pool = urllib3.PoolManager(
            maxsize=pool_size, retries=False, ca_certs=ca, cert_file=cert, key_file=key
        )

    def _post(self, path: str, body: Any) -> Any:
        return retrying(
            self.retries, self._attempt, self.base_url + path, json.dumps(body).encode()
        )

    def _attempt(self, url: str, data: bytes) -> Any:
        try:
            response = self._pool.request(
                "POST",
                url,
                body=data,
                headers={"Content-Type": "application/json"},
                timeout=urllib3.Timeout(total=self.timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            error = PdpUnavailable(f"{self.base_url}: {type(exc).__name__}: {exc}")
            if isinstance(exc, urllib3.exceptions.TimeoutError):
                raise error from None
            raise Retry(error) from None
        if response.status == 200:
            try:
                return json.loads(response.data)
            except ValueError:
                raise PdpUnavailable(f"{self.base_url}: the answer is not JSON") from None
        code, detail = http_error(response.data)
        if response.status == 400:
            raise PdpRequestError(detail, code)
        error = PdpUnavailable(f"{self.base_url}: HTTP {response.status}: {detail}", code)
        if response.status == 503:  # not ready yet (still loading), or busy
            raise Retry(error)
        raise error

    def _ask(self, body: dict[str, Any]) -> Decision:
        answer = self._post("/v1/is-authorized", body)
        if not isinstance(answer, dict):
            raise PdpUnavailable(f"{self.base_url}: the answer is not a JSON object")
        return _decision(answer, self.base_url)

    def _ask_batch(self, requests: list[Mapping[str, Any]]) -> list[Decision]:
        answer = self._post("/v1/batch-is-authorized", {"requests": [dict(r) for r in requests]})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise PdpUnavailable(f"{self.base_url}: the answer has no list of results")
        checked = checked_results(results, len(requests), self.base_url)
        return [_decision(r, self.base_url) for r in checked]

    def close(self) -> None:
        self._pool.clear()


def _decision(body: dict[str, Any], where: str) -> Decision:
    try:
        return Decision.from_dict(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise PdpUnavailable(f"{where}: a malformed decision ({exc!r})") from None
