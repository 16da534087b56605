"""Which HTTP proxy a service's outgoing calls go through, decided once at startup. Pure.

On the local mesh each application's sidecar Envoy is its ``HTTP_PROXY``. aiohttp's
``trust_env=True`` honours that, but looks the proxy (and ``~/.netrc``) up again on every request,
in a worker thread: two thread hand-offs per backend call, which measured as half of
productpage's CPU per page (2.3 ms → 1.1 ms without them, bench/README.md). The backends are
fixed at startup, so each service's settings resolve their proxy once with the same rules:
``http_proxy``/``HTTP_PROXY`` (``https_proxy``/``HTTPS_PROXY`` for https URLs), unless
``no_proxy``/``NO_PROXY`` lists the host, a parent domain of it, or ``*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit


def proxy_for(host: str, env: Mapping[str, str], scheme: str = "http") -> str | None:
    """The proxy URL for ``scheme`` requests to ``host``, or None to connect directly."""
    proxy = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY") or ""
    if not proxy or _bypassed(host, env.get("no_proxy") or env.get("NO_PROXY") or ""):
        return None
    # Like urllib's getproxies, accept a bare host:port.
    return proxy if "://" in proxy else f"http://{proxy}"


def _bypassed(host: str, no_proxy: str) -> bool:
    host = host.lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.lstrip(".").split(":", 1)[0]
        if host == entry or host.endswith("." + entry):
            return True
    return False


def proxy_for_url(url: str, env: Mapping[str, str]) -> str | None:
    """:func:`proxy_for` the host and scheme of ``url``."""
    parts = urlsplit(url)
    return proxy_for(parts.hostname or "", env, parts.scheme or "http")
