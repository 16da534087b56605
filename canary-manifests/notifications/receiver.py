"""A demo receiver for rollout notifications: one line per notification the canary controller
sends to http://127.0.0.1:9999/<kind> (the Secrets of receivers.yaml point there), and the
generic webhook's signature checked the way a real receiver should check it.

    python3 canary-manifests/notifications/receiver.py [PORT]

Standard library only. ``CANARYMESH_HMAC_KEY`` is the webhook's key (the ``hmacKey`` of the
Secret ``audit-webhook``; the default is the demo's).
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import sys
import threading

KEY = os.environ.get("CANARYMESH_HMAC_KEY", "demo-key-replace-with-32-random-bytes").encode()
SIGNATURE = "X-Canarymesh-Signature-256"
_PRINTING = threading.Lock()  # one line at a time: requests are served on threads


def say(line: str) -> None:
    with _PRINTING:
        print(line, flush=True)


def summary(kind: str, body: object) -> str:
    """What a person would read in that receiver: its headline text."""
    if not isinstance(body, dict | list):
        return ""
    if kind == "slack" and isinstance(body, dict):
        return str(body.get("text", ""))
    if kind == "teams" and isinstance(body, dict):
        card = body["attachments"][0]["content"]
        return " / ".join(str(b.get("text", "")) for b in card["body"][:2])
    if kind == "discord" and isinstance(body, dict):
        embed = (body.get("embeds") or [{}])[0]
        return f"{embed.get('title', '')}: {embed.get('description', '')}"
    if kind == "webhook" and isinstance(body, dict):
        return f"{body['namespace']}/{body['canary']} {body['event']}: {body['reason']}"
    if kind == "alertmanager" and isinstance(body, list):
        return "; ".join(
            f"{a['labels']['alertname']} {'resolved' if a['endsAt'] == a['startsAt'] else 'firing'}"
            for a in body
        )
    return ""


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kind = self.path.strip("/").split("/")[0]
        if kind == "webhook":
            wanted = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(self.headers.get(SIGNATURE, ""), wanted):
                say(f"{kind:12} REFUSED: the signature does not match the key")
                self.send_response(401)
                self.end_headers()
                return
        event = self.headers.get("X-Canarymesh-Event", "?")
        text = summary(kind, json.loads(body or b"null"))
        say(f"{kind:12} {event:10} {' '.join(text.split())[:160]}")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # one line per notification is enough


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9999
    print(f"listening on http://127.0.0.1:{port}/ (slack, teams, discord, webhook, alertmanager)")
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
