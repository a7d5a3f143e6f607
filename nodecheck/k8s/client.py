"""Talking to a Kubernetes API the way kubectl does, with one clear line for every failure.

Configuration is found as kubectl finds it: --kubeconfig, else $KUBECONFIG (a colon-separated
list, merged), else ~/.kube/config, else the in-cluster ServiceAccount; --context picks a context.
The `kubernetes` package is imported only here and only when a command needs it (the `k8s`
extra), so the rest of nodecheck runs without it.

Every failure becomes an ApiError whose `kind` is stable (what a caller branches on) and whose
message is one line naming the server and the problem: unreachable, TLS (wrong CA), unauthorized
(expired or invalid credentials), forbidden (RBAC, with the server's own sentence), not found.
Responses are plain dicts (the JSON `kubectl get -o json` prints), so everything after this
module is a pure function of API JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT = 30.0  # seconds per request, connect + read (kubectl's --request-timeout has no default)

# ApiError.kind values
CONFIG, UNREACHABLE, TLS, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, API = (
    "config", "unreachable", "tls", "unauthorized", "forbidden", "not-found", "api")


class ApiError(Exception):
    def __init__(self, kind: str, message: str, status: int | None = None, detail: str = ""):
        super().__init__(message)
        # detail: the server's own Status message (e.g. the admission error text), when it sent one
        self.kind, self.message, self.status, self.detail = kind, message, status, detail


@dataclass
class Connection:
    api_client: Any  # kubernetes.client.ApiClient
    server: str
    context: str | None  # None in-cluster
    source: str  # "kubeconfig:PATH[:PATH]" or "in-cluster"
    timeout: float = DEFAULT_TIMEOUT

    def get(self, path: str, query: dict | None = None) -> dict:
        return self.request("GET", path, query=query)

    def request(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
                content_type: str = "application/json") -> dict:
        """One API call; the decoded JSON body, or ApiError."""
        from kubernetes.client.exceptions import ApiException
        import urllib3

        try:
            req = self.api_client.param_serialize(
                method, path, query_params=list((query or {}).items()), body=body,
                header_params={"Accept": "application/json", "Content-Type": content_type},
                auth_settings=["BearerToken"])
            resp = self.api_client.call_api(*req, _request_timeout=self.timeout)
            data = resp.read()
        except ApiException as exc:
            if not exc.status:  # the REST layer's wrapper of a TLS failure
                raise from_transport(exc, self.server) from None
            raise from_status(exc.status, exc.reason, exc.body, self.server, f"{method} {path}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise from_transport(exc, self.server) from None
        except OSError as exc:
            raise ApiError(UNREACHABLE, f"cannot reach the Kubernetes API at {self.server}: {exc}") from None
        if not 200 <= resp.status <= 299:
            raise from_status(resp.status, resp.reason, data, self.server, f"{method} {path}")
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise ApiError(API, f"{self.server} answered {method} {path} with something that is not JSON") from None


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def from_status(status: int | None, reason: str | None, body, server: str, what: str) -> ApiError:
    """An HTTP error status: the server's own Status message, which names the verb/resource."""
    msg = ""
    if body:
        try:
            msg = json.loads(body).get("message") or ""
        except (ValueError, AttributeError):
            msg = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    detail = " ".join(str(msg).split())
    msg = _one_line(msg)
    if status == 401:
        return ApiError(UNAUTHORIZED, f"the Kubernetes API at {server} rejected the credentials (401 Unauthorized): "
                        "the token is expired or invalid, or the client certificate is not trusted", status, detail)
    if status == 403:
        return ApiError(FORBIDDEN, f"forbidden by the Kubernetes API at {server}: {msg or what}", status, detail)
    if status == 404:
        return ApiError(NOT_FOUND, f"not found: {msg or what}", status, detail)
    if status == 0 or status is None:
        return ApiError(UNREACHABLE, f"no answer from the Kubernetes API at {server} ({reason or 'connection failed'})")
    return ApiError(API, f"the Kubernetes API at {server} answered {what} with HTTP {status} {reason or ''}: {msg}"
                    .rstrip(": "), status, detail)


def from_transport(exc: BaseException, server: str) -> ApiError:
    """A failure below HTTP: refused, timed out, reset, or a certificate that does not verify."""
    chain, e = [], exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        # urllib3 nests the cause in .reason (an exception, or a plain string for ApiException)
        e = getattr(e, "reason", None) or getattr(e, "__cause__", None) or getattr(e, "__context__", None)
    text = " ".join(_one_line(repr(c), 400) for c in chain)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ApiError(TLS, f"TLS: the certificate of the Kubernetes API at {server} does not verify against the "
                        "kubeconfig's certificate-authority (certificate verify failed): wrong CA or wrong server")
    if "SSLError" in text or "SSL" in type(exc).__name__:
        return ApiError(TLS, f"TLS handshake with the Kubernetes API at {server} failed: {_one_line(str(chain[-1]))}")
    for marker, say in (("Connection refused", "connection refused"), ("timed out", "timed out"),
                        ("Read timed out", "timed out"), ("Connection reset", "connection reset"),
                        ("RemoteDisconnected", "the server closed the connection"),
                        ("Connection aborted", "the connection was aborted"),
                        ("Name or service not known", "name does not resolve"),
                        ("No route to host", "no route to host")):
        if marker in text:
            return ApiError(UNREACHABLE, f"cannot reach the Kubernetes API at {server}: {say}")
    return ApiError(UNREACHABLE, f"cannot reach the Kubernetes API at {server}: {_one_line(str(chain[-1]))}")


def connect(kubeconfig: str | None = None, context: str | None = None, *,
            timeout: float = DEFAULT_TIMEOUT) -> Connection:
    """A Connection as kubectl would make it, or ApiError(kind="config")."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:  # the optional extra is missing
        raise ApiError(CONFIG, "the Kubernetes commands need the `kubernetes` package: pip install 'nodecheck[k8s]'") from exc

    paths = kubeconfig or os.environ.get("KUBECONFIG") or ""
    default = os.path.expanduser("~/.kube/config")
    try:
        if paths or os.path.exists(default):
            files = [p for p in (paths or default).split(os.pathsep) if p]
            missing = [p for p in files if not os.path.isfile(p)]
            if kubeconfig and missing:
                raise ApiError(CONFIG, f"kubeconfig {missing[0]} does not exist")
            if not [p for p in files if os.path.isfile(p)]:
                raise ApiError(CONFIG, f"no kubeconfig found at {', '.join(files)}")
            cfg = client.Configuration()
            # The library merges a colon-separated list itself (KubeConfigMerger), as kubectl does.
            loader_file = kubeconfig or paths or default
            config.load_kube_config(config_file=loader_file, context=context, client_configuration=cfg,
                                    persist_config=False)
            ctx = context or _current_context(loader_file)
            source = "kubeconfig:" + (kubeconfig or paths or default)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            if context:
                raise ApiError(CONFIG, "--context needs a kubeconfig; in a pod only the in-cluster config exists")
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            ctx, source = None, "in-cluster"
        else:
            raise ApiError(CONFIG, "no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not in a pod")
    except ConfigException as exc:
        raise ApiError(CONFIG, f"kubeconfig: {_one_line(str(exc))}") from None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ApiError(CONFIG, f"kubeconfig unusable: {_one_line(str(exc)) or type(exc).__name__}") from None
    cfg.retries = 1  # a refused or reset connection is retried once, not urllib3's three times
    return Connection(client.ApiClient(cfg), cfg.host, ctx, source, timeout)


def _current_context(path: str | None) -> str | None:
    try:
        from kubernetes import config
        _, active = config.list_kube_config_contexts(config_file=path)
        return (active or {}).get("name")
    except Exception:  # noqa: BLE001 - only a label for the report
        return None


def list_all(conn: Connection, path: str, *, query: dict | None = None, limit: int = 500,
             on_page=None) -> list[dict]:
    """Every item of a list, page by page (limit/continue, as kubectl --chunk-size does).

    A failure on a later page is an error, not a shorter list: a prescan must never report a
    cluster with fewer nodes than it has. `on_page(n_pages, n_items)` is called after each page."""
    items: list[dict] = []
    base = {k: v for k, v in (query or {}).items() if v is not None}
    query = {**base, "limit": limit}
    pages = 0
    while True:
        try:
            doc = conn.get(path, query)
        except ApiError as exc:
            if pages:
                raise ApiError(exc.kind, f"{exc.message} (after {pages} page(s), {len(items)} item(s) read: "
                               "the list is incomplete, so nothing is reported)", exc.status) from None
            raise
        items.extend(doc.get("items") or [])
        pages += 1
        if on_page:
            on_page(pages, len(items))
        cont = (doc.get("metadata") or {}).get("continue")
        if not cont:
            return items
        query = {**base, "limit": limit, "continue": cont}
