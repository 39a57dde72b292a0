"""HTTP for every backend client: auth, TLS, timeouts and error messages in one place.

    settings = Endpoint(url="https://prom:9090", bearer_token_file="/run/token", ca_file="ca.pem")
    with connect(settings) as client:
        body = request_json(client, "prometheus", "POST", "/api/v1/query_range", deadline, data=...)

A failure of any kind (refused, timed out, a 5xx, a body that is not JSON) becomes a
BackendError whose message names the backend, the path and what went wrong, never the
credentials; the caller turns it into missing evidence.
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from warroom.errors import BackendError, InputError

DEFAULT_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 256 * 1024 * 1024  # a single answer larger than this is refused, not parsed
AUTH_HINTS = {
    401: " (check the source's bearer_token*/username/password* settings)",
    403: " (the credentials work but may not read this: check their permissions or tenant)",
}
MIN_REQUEST_S = 0.05  # less time than this left before the deadline: do not start a request


class Traffic:
    """Requests and body bytes per backend since start: what an investigation cost the backends
    (benchmarks and `sources check` read it; thread-safe, fetches run on a pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally: dict[str, list[int]] = {}

    def add(self, backend: str, size: int) -> None:
        """Count one answered request of `size` body bytes."""
        with self._lock:
            counts = self._tally.setdefault(backend, [0, 0])
            counts[0] += 1
            counts[1] += size

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """backend -> (requests, bytes) so far."""
        with self._lock:
            return {name: (c[0], c[1]) for name, c in self._tally.items()}


TRAFFIC = Traffic()


class Endpoint(BaseModel):
    """Where a backend lives and how to talk to it (one `[sources.<name>]` table of the config)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. X-Scope-OrgID for a tenant
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    bearer_token_env: str | None = None  # the name of an environment variable holding it
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=600)

    @model_validator(mode="after")
    def _one_auth(self) -> Endpoint:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https:// (got {self.url!r})")
        # Secrets named by environment variable are read now: a missing one fails at start.
        if self.bearer_token_env:
            self.bearer_token = _from_env(self.bearer_token_env, "bearer_token_env")
        if self.password_env:
            self.password = _from_env(self.password_env, "password_env")
        bearer = self.bearer_token is not None or self.bearer_token_file is not None
        if bearer and self.username is not None:
            raise ValueError("give either a bearer token or a username/password, not both")
        return self


def _from_env(name: str, field: str) -> SecretStr:
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"{field}: the environment variable {name} is not set")
    return SecretStr(value)


def connect(endpoint: Endpoint) -> httpx.Client:
    """An httpx client for the endpoint (no request is made here)."""
    headers = dict(endpoint.headers)
    token = _secret(endpoint.bearer_token, endpoint.bearer_token_file, "bearer_token_file")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    auth = None
    if endpoint.username is not None:
        password = _secret(endpoint.password, endpoint.password_file, "password_file") or ""
        auth = httpx.BasicAuth(endpoint.username, password)
    verify: bool | ssl.SSLContext = True
    if endpoint.insecure_skip_verify:
        verify = False
    elif endpoint.ca_file is not None:
        if not endpoint.ca_file.is_file():
            raise InputError(f"ca_file {endpoint.ca_file} does not exist")
        try:
            verify = ssl.create_default_context(cafile=str(endpoint.ca_file))
        except (OSError, ssl.SSLError) as err:
            raise InputError(f"ca_file {endpoint.ca_file}: not a CA bundle ({err})") from None
    return httpx.Client(
        base_url=endpoint.url.rstrip("/"),
        headers=headers,
        auth=auth,
        verify=verify,
        timeout=endpoint.timeout_s,
        follow_redirects=False,
    )


def request_json(
    client: httpx.Client,
    backend: str,
    method: str,
    path: str,
    deadline: float,
    **kwargs: Any,
) -> Any:
    """One request, bounded by the client's timeout and the deadline (time.monotonic());
    returns the parsed JSON body or raises BackendError."""
    left = deadline - time.monotonic()
    if left < MIN_REQUEST_S:
        raise BackendError(f"{backend}: {path} not asked, the time budget is spent")
    timeout = min(left, client.timeout.read or left)
    try:
        response = client.request(method, path, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        raise BackendError(f"{backend}: {path} timed out after {timeout:.1f} s") from None
    except httpx.HTTPError as err:
        raise BackendError(f"{backend}: {path} failed: {_plain(err)}") from None
    TRAFFIC.add(backend, len(response.content))
    if len(response.content) > MAX_BODY_BYTES:
        raise BackendError(f"{backend}: {path} answered more than {MAX_BODY_BYTES} bytes")
    if response.status_code >= 400:
        hint = AUTH_HINTS.get(response.status_code, "")
        raise BackendError(
            f"{backend}: {path} answered {response.status_code}: {_why(response)}{hint}",
            status=response.status_code,
        )
    try:
        return response.json()
    except ValueError:
        raise BackendError(f"{backend}: {path} answered something that is not JSON") from None


def _why(response: httpx.Response) -> str:
    """The backend's own words: Prometheus and Loki put them in `error`, ES in `error.reason`."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        words = _error_words(body)
        if words:
            return words[:300]
    return response.text[:300].strip()


def _error_words(body: dict[str, Any]) -> str:
    """Prometheus/Loki `errorType` + `error`, Elasticsearch `error.root_cause[0]` type and
    reason, Jaeger `errors[0].msg`, Kubernetes and others `message`."""
    error = body.get("error")
    if isinstance(error, dict):
        causes = error.get("root_cause")
        cause = causes[0] if isinstance(causes, list) and causes else error
        cause = cause if isinstance(cause, dict) else error
        return ": ".join(str(cause[k]) for k in ("type", "reason") if cause.get(k))
    if error:
        kind = body.get("errorType")
        return f"{kind}: {error}" if kind else str(error)
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("msg") or errors[0])
    return str(body.get("message") or "")


def _plain(err: httpx.HTTPError) -> str:
    return str(err) or type(err).__name__


def _secret(value: SecretStr | None, path: Path | None, field: str) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise InputError(f"{field} {path}: {err.strerror}") from None
