"""The stand-ins for other projects' example images: the catalog maps nginx and Argo's
rollouts-demo (its tag setting the color, the bad- and slow- variants), and each app answers
what its image answers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from canarymesh.runtime.local.catalog import PythonService, catalog_recipe
from canarymesh.runtime.local.standins import nginx, rollouts_demo


@pytest.mark.parametrize(
    ("image", "module", "env"),
    [
        ("nginx:1.19-alpine", "nginx", {"NGINX_VERSION": "1.19"}),
        ("docker.io/library/nginx", "nginx", {"NGINX_VERSION": "1.27"}),
        ("argoproj/rollouts-demo:blue", "rollouts_demo", {"COLOR": "blue"}),
        ("argoproj/rollouts-demo:bad-red", "rollouts_demo", {"COLOR": "red", "ERROR_RATE": "15"}),
        ("docker.io/argoproj/rollouts-demo:slow-yellow", "rollouts_demo",
         {"COLOR": "yellow", "LATENCY": "2"}),
        ("argoproj/rollouts-demo", "rollouts_demo", {"COLOR": ""}),
    ],
)  # fmt: skip
def test_the_catalog_maps_the_example_images(image: str, module: str, env: dict[str, str]) -> None:
    recipe = catalog_recipe(image)
    assert isinstance(recipe, PythonService)
    assert recipe.module == f"canarymesh.runtime.local.standins.{module}"
    assert dict(recipe.env) == env


def test_other_images_of_those_names_are_not_mapped() -> None:
    assert catalog_recipe("nginxinc/nginx-unprivileged:1.25") is None
    assert catalog_recipe("someone/rollouts-demo:blue") is None


def call(app: web.Application, check: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def run() -> None:
        async with TestClient(TestServer(app)) as client:
            await check(client)

    asyncio.run(run())


def test_nginx_answers_like_its_default_server() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        page = await client.get("/")
        assert page.status == 200 and page.headers["Server"] == "nginx/1.19"
        assert "<title>Welcome to nginx!</title>" in await page.text()
        missing = await client.get("/nothing")
        assert missing.status == 404 and "404 Not Found" in await missing.text()
        assert (await client.post("/")).status == 405

    call(nginx.create_app({"NGINX_VERSION": "1.19"}), check)


def test_rollouts_demo_answers_its_color() -> None:
    async def check(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/color")
        assert answer.status == 200 and await answer.text() == '"blue"'
        forced = await client.post("/color", json=[{"color": "blue", "return500": 100}])
        assert forced.status == 500 and await forced.text() == '"blue"'
        assert "Argo Rollouts Demo" in await (await client.get("/")).text()

    call(rollouts_demo.create_app({"COLOR": "blue"}), check)


def test_a_bad_image_fails_as_often_as_the_real_one() -> None:
    statuses: list[int] = []

    async def check(client: TestClient[Any, Any]) -> None:
        for _ in range(400):
            statuses.append((await client.get("/color")).status)

    env = {"COLOR": "red", "ERROR_RATE": "15"}
    call(rollouts_demo.create_app(env, random.Random(7)), check)
    # main.go answers 500 when rand.Intn(100) >= ERROR_RATE: 85 requests in 100.
    assert 0.78 < statuses.count(500) / len(statuses) < 0.92
