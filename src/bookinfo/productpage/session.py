"""The signed client-side session cookie that remembers who signed in. Pure (no I/O).

Like Flask's session in the original, the state lives in the cookie itself, signed with a shared
secret, so any replica can read a cookie another replica wrote. A cookie whose signature does not
verify (tampered, or signed with another key) reads as "nobody signed in".
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

COOKIE_NAME = "session"
MAX_USER_LENGTH = 256


class InvalidUserName(ValueError):
    """A user name that cannot be stored in the session or sent as an ``end-user`` header."""


class SessionCodec:
    """Turns a user name into a signed cookie value and back."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="bookinfo-session")

    def dump(self, user: str) -> str:
        """The cookie value for a session where ``user`` is signed in."""
        check_user_name(user)
        return self._serializer.dumps({"user": user})

    def load(self, cookie: str | None) -> str | None:
        """The signed-in user name, or None for no cookie, a bad signature or an odd payload."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        user = data.get("user") if isinstance(data, dict) else None
        if not isinstance(user, str):
            return None
        try:
            check_user_name(user)
        except InvalidUserName:
            return None
        return user


def check_user_name(user: str) -> None:
    """Raise :class:`InvalidUserName` unless ``user`` is safe to sign and to send as a header."""
    if not user.strip():
        raise InvalidUserName("the user name must not be empty")
    if len(user) > MAX_USER_LENGTH:
        raise InvalidUserName(f"the user name must be at most {MAX_USER_LENGTH} characters")
    if not user.isprintable():
        # It travels as the ``end-user`` header: a CR or LF would split the request.
        raise InvalidUserName("the user name must not contain control characters")
