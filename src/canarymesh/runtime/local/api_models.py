"""The control plane's HTTP API as types: what ``/v1/...`` answers and accepts.

Shared by the server (:mod:`.api_server`, :mod:`.control`), the client (:mod:`.api_client`) and
everything that reads a mesh through it (the CLI, the dashboard, the canary controller).
"""

from __future__ import annotations

__all__ = ["CANARY_KIND", "DESTINATION_RULE_KIND", "VIRTUAL_SERVICE_KIND"]

# Kinds as ``/v1/resources?kinds=`` names them (the store's keys: kind.group, as kubectl does).
CANARY_KIND = "canary.canarymesh.io"
VIRTUAL_SERVICE_KIND = "virtualservice.networking.istio.io"
DESTINATION_RULE_KIND = "destinationrule.networking.istio.io"
