"""``/docs`` works offline: the Swagger page's script, style sheet and icon come from the server.

FastAPI's default page loads them from a CDN and is blank without internet access.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.server.conftest import Api
from tests.server.server_process import running_server

CHROMIUM = os.environ.get("THRESHER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def test_docs_load_only_files_the_server_itself_serves(api: Api) -> None:
    r = api.client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    urls = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert len(urls) >= 3  # the script, the style sheet, the icon
    assert not [u for u in urls if urlsplit(u).netloc or u.startswith("//")], urls
    for url in urls:
        asset = api.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert "url: '/openapi.json'" in r.text
    assert api.client.get("/openapi.json").json()["paths"]  # the document the page shows


def test_the_page_shows_the_routes_in_a_browser_with_no_internet(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"NO BROWSER TEST OF /docs: chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("NO BROWSER TEST OF /docs: playwright missing (pip install -e .[dev])")
    with running_server(tmp_path / "home") as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            outside: list[str] = []

            def only_the_server(route, request) -> None:  # type: ignore[no-untyped-def]
                if request.url.startswith(srv.url):
                    route.continue_()
                else:  # as on a machine with no internet access
                    outside.append(request.url)
                    route.abort()

            page.route("**/*", only_the_server)
            page.goto(f"{srv.url}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert any("/v1/datasets" in p for p in paths), paths[:5]
    assert outside == []
