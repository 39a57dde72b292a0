"""Listing Kubernetes API resources: pages, the Status error envelope, a short snapshot cache.

    client = open_client(endpoint, ca_data=None)
    listing = list_all(client, "/api/v1/pods", deadline, page_size=500, max_items=100_000)

A list is read in pages (`limit` + the `continue` token of each answer); a continue token
that expired (410 Gone, reason Expired) restarts the list once from the beginning, as the API
conventions ask of a client that wants a consistent list. An error answer in the API's
`kind: Status` envelope becomes a KubeStatusError naming the path, code, reason and the API
server's own message (for a 403 it names the user, verb and resource that were refused).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from warroom.errors import BackendError, InputError
from warroom.telemetry.http import Endpoint, connect, request_json

BACKEND = "kubernetes"
# Only the metadata of each object (the server drops data and spec): a Secret's values are
# never fetched, and a ConfigMap's data is not needed to see that it was written.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
HINTS = {
    401: "the API server refused the token: check bearer_token_file or the kubeconfig user "
    "(service-account tokens expire)",
    403: "grant this identity `list` on that resource (a ClusterRole for all namespaces)",
}


class KubeStatusError(BackendError):
    """An error answer in the Kubernetes `Status` envelope."""

    def __init__(self, path: str, code: int, reason: str, message: str) -> None:
        self.path, self.code, self.reason, self.message = path, code, reason, message
        hint = f" ({HINTS[code]})" if code in HINTS else ""
        super().__init__(f"{BACKEND}: {path} answered {code} {reason}: {message}{hint}")


def _raise_status(response: httpx.Response) -> None:
    """Response hook: an error answer in the Status envelope raises before request_json sees
    it, so that the code, the reason and the message survive as fields."""
    if response.status_code < 400:
        return
    response.read()
    try:
        body = response.json()
    except ValueError:
        return  # not the API server's own answer (a proxy's page): request_json says so
    if isinstance(body, dict) and body.get("kind") == "Status":
        code = body["code"] if isinstance(body.get("code"), int) else response.status_code
        reason = str(body.get("reason") or response.reason_phrase)
        message = str(body.get("message") or "")[:300]
        raise KubeStatusError(response.request.url.path, code, reason, message)


def open_client(endpoint: Endpoint, ca_data: str | None = None) -> httpx.Client:
    """An httpx client for the API server; `ca_data` is a kubeconfig's inline CA (PEM)."""
    try:
        client = connect(endpoint)
    except InputError as err:  # a token or CA file that went missing since the config was read
        raise BackendError(f"{BACKEND}: {err}") from None
    if ca_data:
        try:
            context = ssl.create_default_context(cadata=ca_data)
        except (ssl.SSLError, ValueError) as err:
            client.close()
            why = f"certificate-authority-data is not a PEM CA: {err}"
            raise BackendError(f"{BACKEND}: {why}") from None
        headers, auth, timeout = client.headers, client.auth, client.timeout
        client.close()
        client = httpx.Client(
            base_url=endpoint.url.rstrip("/"),
            headers=headers,
            auth=auth,
            verify=context,
            timeout=timeout,
            follow_redirects=False,
        )
    client.event_hooks = {"request": [], "response": [_raise_status]}
    return client


@dataclass(frozen=True)
class Listing:
    """The items of one list, and a note when it was cut short."""

    items: tuple[dict[str, Any], ...]
    note: str = ""


def list_all(
    client: httpx.Client,
    path: str,
    deadline: float,
    *,
    page_size: int,
    max_items: int,
    accept: str | None = None,
) -> Listing:
    """Every object of a list, page by page; an expired continue token restarts it once."""
    for attempt in (1, 2):
        try:
            return _pages(client, path, deadline, page_size, max_items, accept)
        except KubeStatusError as err:
            if err.code != 410 or attempt == 2:
                raise
    raise AssertionError("unreachable")  # the loop returns or raises


def _pages(
    client: httpx.Client,
    path: str,
    deadline: float,
    page_size: int,
    max_items: int,
    accept: str | None,
) -> Listing:
    items: list[dict[str, Any]] = []
    token = ""
    headers = {"Accept": accept} if accept else {}
    while True:
        params: dict[str, str | int] = {"limit": page_size}
        if token:
            params["continue"] = token
        body = request_json(client, BACKEND, "GET", path, deadline, params=params, headers=headers)
        page, meta = _page(body, path)
        items.extend(page)
        token = str(meta.get("continue") or "")
        if not token:
            return Listing(tuple(items))
        if len(items) >= max_items:
            left = meta.get("remainingItemCount")
            more = f"{left} more" if isinstance(left, int) else "the rest"
            note = f"{BACKEND}: {path}: read {len(items)} objects (max_items), {more} not read"
            return Listing(tuple(items), note)


def _page(body: Any, path: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        kind = body.get("kind") if isinstance(body, dict) else type(body).__name__
        raise BackendError(f"{BACKEND}: {path} answered a {kind} where a list was expected")
    meta = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    return [item for item in body["items"] if isinstance(item, dict)], meta


class Snapshots:
    """Lists kept for `ttl_s`: a cover() fetches many chunks at once, and each would otherwise
    list the same pods again. One lock per list, so concurrent fetches wait for one answer."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._kept: dict[str, tuple[float, Listing | KubeStatusError]] = {}

    def get(self, key: str, deadline: float, load: Callable[[], Listing]) -> Listing:
        """The kept listing of `key`, or a fresh one from `load()`."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise BackendError(f"{BACKEND}: {key} not listed within the time budget")
        try:
            kept = self._kept.get(key)
            if kept is None or self.clock() - kept[0] >= self.ttl_s:
                kept = (self.clock(), self._load(load))
                self._kept[key] = kept
        finally:
            lock.release()
        result = kept[1]
        if isinstance(result, KubeStatusError):
            raise KubeStatusError(result.path, result.code, result.reason, result.message)
        return result

    @staticmethod
    def _load(load: Callable[[], Listing]) -> Listing | KubeStatusError:
        try:
            return load()
        except KubeStatusError as err:
            if err.code in (403, 404):  # a permission or a missing API does not come back soon
                return err
            raise
