"""Shell: ratings v2 reads the first two ratings from MySQL or MongoDB, a new connection each time.

Called by :mod:`bookinfo.ratings.app`. A failure is raised as :class:`ConnectFailed` or
:class:`QueryFailed`; the app turns it into the original's answer for that database (they differ:
MySQL's connect error is a 200, MongoDB's a 500). Like the original, the product id plays no part:
the first row is Reviewer1's rating and the second Reviewer2's, 0 when the row is missing.
"""

from __future__ import annotations

import logging
from typing import Any

import aiomysql
import pymysql
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from bookinfo.ratings.settings import MySqlSettings

LOG = logging.getLogger("bookinfo.ratings")
REVIEWERS = ("Reviewer1", "Reviewer2")


class DatabaseError(Exception):
    """The ratings database could not be used."""


class ConnectFailed(DatabaseError):
    """No connection (refused, timed out, bad credentials, unknown database)."""


class QueryFailed(DatabaseError):
    """Connected, but reading the ratings failed."""


async def mysql_ratings(settings: MySqlSettings, timeout: float) -> dict[str, Any]:
    """``SELECT Rating FROM ratings`` in database ``test``."""
    try:
        conn = await aiomysql.connect(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password,
            db="test",
            connect_timeout=timeout,
        )
    except (pymysql.MySQLError, OSError, TimeoutError) as exc:
        LOG.warning("mysql %s:%d: connect failed: %s", settings.host, settings.port, exc)
        raise ConnectFailed(str(exc)) from exc
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SELECT Rating FROM ratings")
            rows = await cursor.fetchall()
    except (pymysql.MySQLError, OSError, TimeoutError) as exc:
        LOG.warning("mysql %s:%d: select failed: %s", settings.host, settings.port, exc)
        raise QueryFailed(str(exc)) from exc
    finally:
        await _close_politely(conn)
    return {name: rows[i][0] if i < len(rows) else 0 for i, name in enumerate(REVIEWERS)}


async def _close_politely(conn: Any) -> None:
    # COM_QUIT first, so the server does not log an aborted connection for every request.
    try:
        await conn.ensure_closed()
    except (pymysql.MySQLError, OSError):
        conn.close()


async def mongo_ratings(url: str, timeout: float) -> dict[str, Any]:
    """``db.test.ratings.find({})``, field ``rating``."""
    millis = int(timeout * 1000)
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=millis, connectTimeoutMS=millis, socketTimeoutMS=millis
        )
    except (PyMongoError, ValueError) as exc:
        LOG.warning("mongodb: bad MONGO_DB_URL: %s", exc)
        raise ConnectFailed(str(exc)) from exc
    try:
        # The client connects lazily; a ping separates "cannot connect" from "cannot read".
        try:
            await client.admin.command("ping")
        except PyMongoError as exc:
            LOG.warning("mongodb: connect failed: %s", exc)
            raise ConnectFailed(str(exc)) from exc
        try:
            documents = await client["test"]["ratings"].find({}).to_list(length=len(REVIEWERS))
        except PyMongoError as exc:
            LOG.warning("mongodb: find failed: %s", exc)
            raise QueryFailed(str(exc)) from exc
    finally:
        await client.close()
    ratings: dict[str, Any] = {}
    for i, name in enumerate(REVIEWERS):
        if i >= len(documents):
            ratings[name] = 0
        elif "rating" in documents[i]:
            # A document without the field gives undefined in Node, which JSON.stringify drops.
            ratings[name] = documents[i]["rating"]
    return ratings
