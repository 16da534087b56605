"""The demo launcher starts every Bookinfo service and serves a working productpage."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.processes import free_port, http_get

pytestmark = pytest.mark.integration


def test_launch_serves_productpage_with_the_chosen_reviews_version() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bookinfo.launch", "--port", str(port), "--reviews", "v3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            found = re.search(r"productpage \(reviews v3\): (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url == f"http://127.0.0.1:{port}/productpage"
        status, _, body = http_get(url)
        page = body.decode()
        assert status == 200
        assert "<title>Simple Bookstore App</title>" in page
        assert page.count("glyphicon glyphicon-star") >= 9
        assert "text-red-500" in page and "Book Details" in page
    finally:
        proc.terminate()
        code = proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0
