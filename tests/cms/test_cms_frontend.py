"""The frontend's contract: home page from the backend, its own health and /api/ routes."""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from cms_stack import FRONTEND_DIR, HOST, NODE, Stack, wait_until

pytestmark = pytest.mark.cms_stack


def test_home_lists_an_article_created_through_the_api(
    backend: httpx.Client, frontend: httpx.Client
) -> None:
    title = f"Front page <news> {os.urandom(3).hex()}"
    assert backend.post("/api/articles/", json={"title": title}).status_code == 201
    page = frontend.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert title.replace("<", "&lt;").replace(">", "&gt;") in page.text
    assert "<news>" not in page.text  # escaped, not injected


def test_frontend_health_is_its_own(frontend: httpx.Client) -> None:
    response = frontend.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-served-by"] == "cms-frontend"


def test_search_proxies_the_backend_filtered_by_title(
    backend: httpx.Client, frontend: httpx.Client
) -> None:
    word = "findme" + os.urandom(3).hex()
    wanted = backend.post("/api/articles/", json={"title": f"about {word}"}).json()["id"]
    backend.post("/api/articles/", json={"title": "something else"})
    response = frontend.get("/api/search", params={"q": word.upper()})
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [wanted]


def test_revalidate_is_a_frontend_route(frontend: httpx.Client) -> None:
    response = frontend.post("/api/revalidate", json={"path": "/"})
    assert response.status_code == 200
    assert response.json()["revalidated"] is True
    assert frontend.get("/api/revalidate").status_code == 405


def test_unknown_paths_are_404(frontend: httpx.Client) -> None:
    assert frontend.get("/no/such/page").status_code == 404
    response = frontend.get("/api/articles/")  # a backend path: not the frontend's
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_home_still_answers_when_the_backend_is_down(stack: Stack) -> None:
    name, port = "frontend-orphan", stack.ports.spare_frontend
    stack.start_frontend(name, port=port, backend_port=stack.ports.dead)
    try:
        page = httpx.get(f"http://{HOST}:{port}/", timeout=15)
        assert page.status_code == 200
        assert "unavailable" in page.text
        assert httpx.get(f"http://{HOST}:{port}/api/health", timeout=15).status_code == 200
        assert httpx.get(f"http://{HOST}:{port}/api/search?q=x", timeout=15).status_code == 502
    finally:
        stack.stop(name)


def test_sigterm_stops_the_frontend_cleanly(stack: Stack) -> None:
    name, port = "frontend-term", stack.ports.spare_frontend
    stack.start_frontend(name, port=port)
    proc = stack.procs.pop(name)
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "SIGTERM" in stack.log_tail(name)


def test_frontend_listens_on_every_host_given(stack: Stack) -> None:
    name, port = "frontend-multi", stack.ports.spare_frontend
    env = stack.frontend_env(port, stack.ports.backend) | {"HOST": "127.0.0.1,127.0.0.2"}
    stack.spawn(name, [str(NODE), str(FRONTEND_DIR / "server.js")], env, FRONTEND_DIR)
    try:
        stack.wait_port(name, port)
        for host in ("127.0.0.1", "127.0.0.2"):
            url = f"http://{host}:{port}/api/health"
            wait_until(url, lambda url=url: httpx.get(url, timeout=5).status_code == 200, 10)
    finally:
        stack.stop(name)
