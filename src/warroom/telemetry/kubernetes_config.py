"""Reading a kubeconfig file: the server, CA and credentials of one context, as Config fields.

    fields = kubeconfig_fields(Path("~/.kube/config").expanduser(), context="prod")

kubectl's rules where warroom follows them: the current context unless one is named, file
paths relative to the kubeconfig's folder, certificate-authority-data inline (base64 PEM).
Client certificates, exec plugins and auth providers are refused with a message, not ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from warroom.errors import InputError


def kubeconfig_fields(path: Path, context: str | None = None) -> dict[str, Any]:
    """Config fields of one kubeconfig context; file paths in it are relative to the file."""
    doc = _read_kubeconfig(path)
    name = context or doc.get("current-context")
    if not name:
        raise InputError(f"kubeconfig {path}: no current-context; name a context")
    ctx = _named(doc, "contexts", str(name), path).get("context") or {}
    cluster = _named(doc, "clusters", str(ctx.get("cluster")), path).get("cluster") or {}
    user = (
        _named(doc, "users", str(ctx.get("user")), path).get("user") or {}
        if ctx.get("user")
        else {}
    )
    if not cluster.get("server"):
        raise InputError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    found: dict[str, Any] = {"url": cluster["server"]}
    found.update(_kube_ca(cluster, path))
    found.update(_kube_user(user, path, str(ctx.get("user"))))
    return found


def _read_kubeconfig(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"kubeconfig {path}: {err.strerror}") from None
    doc = _parse(text, path)
    if not isinstance(doc, dict):
        raise InputError(f"kubeconfig {path}: not a kubeconfig (a {type(doc).__name__})")
    return doc


def _parse(text: str, path: Path) -> Any:
    try:
        import yaml  # PyYAML, optional: a kubeconfig is YAML, or JSON (which kubectl reads too)
    except ImportError:
        if text.lstrip().startswith("{"):
            return _json(text, path)
        raise InputError(
            f"kubeconfig {path} is YAML: pip install pyyaml to read it "
            "(or give url, bearer_token_file and ca_file)"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"kubeconfig {path}: not YAML: {str(err)[:200]}") from None


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise InputError(f"kubeconfig {path}: not JSON: {err}") from None


def _named(doc: Mapping[str, Any], section: str, name: str, path: Path) -> Mapping[str, Any]:
    for entry in doc.get(section) or ():
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return entry
    raise InputError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")


def _kube_ca(cluster: Mapping[str, Any], path: Path) -> dict[str, Any]:
    if cluster.get("insecure-skip-tls-verify"):
        return {"insecure_skip_verify": True}
    if cluster.get("certificate-authority-data"):
        try:
            pem = base64.b64decode(str(cluster["certificate-authority-data"]), validate=True)
        except (binascii.Error, ValueError):
            raise InputError(
                f"kubeconfig {path}: certificate-authority-data is not base64"
            ) from None
        return {"ca_data": pem.decode("ascii", errors="replace")}
    if cluster.get("certificate-authority"):
        return {"ca_file": path.parent / str(cluster["certificate-authority"])}
    return {}


def _kube_user(user: Mapping[str, Any], path: Path, name: str) -> dict[str, Any]:
    if user.get("token"):
        return {"bearer_token": SecretStr(str(user["token"]))}
    if user.get("tokenFile"):
        return {"bearer_token_file": path.parent / str(user["tokenFile"])}
    if user.get("username"):
        return {"username": str(user["username"]), "password": SecretStr(str(user.get("password")))}
    unsupported = [
        k
        for k in ("client-certificate", "client-certificate-data", "exec", "auth-provider")
        if user.get(k)
    ]
    if unsupported:
        raise InputError(
            f"kubeconfig {path}: user {name!r} authenticates with {unsupported[0]}, which warroom "
            "does not run; give it a token (kubectl create token <service-account>)"
        )
    return {}
