import pytest

from hapair.components.http_lb import (
    DEFAULT_KIND,
    HaproxyLbParams,
    HttpNode,
    NginxLbParams,
    RouteTable,
    check_lb_answer,
    haproxy_lb_argv,
    lb_probe_argv,
    nginx_argv,
    nginx_test_argv,
    render_haproxy_lb_config,
    render_nginx_config,
)
from hapair.errors import UsageError

# the inventory example's table
ROUTES = RouteTable(
    backend=("/health/", "/api/articles/", "/api/media/", "/api/session/", "/media/", "/admin/",
             "/static/"),
    frontend=("/api/health", "/api/revalidate", "/api/search", "/"),
)
NODES = (HttpNode("node1", "10.99.0.11"), HttpNode("node2", "10.99.0.12"))


@pytest.mark.parametrize(
    ("path", "target"),
    [("/health/", "backend"), ("/api/health", "frontend"), ("/api/articles/7", "backend"),
     ("/api/search?q=x", "frontend"), ("/api/other", "frontend"), ("/admin/login", "backend"),
     ("/", "frontend"), ("/about", "frontend")],
)
def test_longest_prefix_wins(path: str, target: str) -> None:
    assert ROUTES.target_for(path) == target


def test_route_order_and_default() -> None:
    prefixes = [r.prefix for r in ROUTES.routes()]
    assert prefixes[0] == "/api/revalidate" and "/" not in prefixes
    assert [len(p) for p in prefixes] == sorted((len(p) for p in prefixes), reverse=True)
    assert RouteTable(("/",), ("/_next/",)).default == "backend"


@pytest.mark.parametrize(
    ("backend", "frontend", "message"),
    [(("/a",), ("/a",), "already routed"), (("api/",), (), "must start with '/'"),
     (("/a b",), (), "no spaces"), (("/a;}",), (), "no spaces")],
)
def test_invalid_routes(backend: tuple, frontend: tuple, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RouteTable(backend, frontend)


def stripped(text: str) -> list[str]:
    stripped_lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in stripped_lines if ln and not ln.startswith("#")]


def test_nginx_config() -> None:
    f = render_nginx_config(NginxLbParams("node1", NODES, ROUTES))
    lines = stripped(f.content)
    assert "listen 0.0.0.0:80;" in lines
    assert "server 10.99.0.11:8000 max_fails=1 fail_timeout=2s;" in lines
    assert "server 10.99.0.12:3000 max_fails=1 fail_timeout=2s;" in lines
    assert "proxy_next_upstream error timeout http_502 http_503;" in lines
    directives = " ".join(lines)
    assert "non_idempotent" not in directives
    assert "ip_hash" not in directives and "return 200" not in directives
    assert "backup" not in directives
    i = lines.index("location ^~ /api/health {")
    assert lines[i + 1] == "proxy_pass http://hapair_frontend;"
    i = lines.index("location ^~ /health/ {")
    assert lines[i + 1] == "proxy_pass http://hapair_backend;"
    assert lines[lines.index("location / {") + 1] == "proxy_pass http://hapair_frontend;"
    p = NginxLbParams("node1", NODES, ROUTES, config_path="/x/nginx.conf")
    assert nginx_argv(p) == ["nginx", "-c", "/x/nginx.conf", "-g", "daemon off;"]
    assert nginx_test_argv("/x/nginx.conf", "/x") == [
        "nginx", "-t", "-q", "-c", "/x/nginx.conf", "-e", "stderr", "-p", "/x"]


def test_haproxy_lb_config() -> None:
    f = render_haproxy_lb_config(HaproxyLbParams("node1", NODES, ROUTES, health_host="cms.lan"))
    lines = stripped(f.content)
    assert DEFAULT_KIND == "haproxy"
    assert "bind 0.0.0.0:80" in lines
    rules = [ln for ln in lines if ln.startswith("use_backend")]
    assert rules[0] == "use_backend hapair_frontend if { path_beg /api/revalidate }"
    assert "use_backend hapair_backend if { path_beg /health/ }" in rules
    assert lines[lines.index(rules[-1]) + 1] == "default_backend hapair_frontend"
    be = lines.index("backend hapair_backend")
    assert lines[be:be + 8] == [
        "backend hapair_backend",
        "balance roundrobin",
        "http-request disable-l7-retry if !{ method GET HEAD OPTIONS PUT DELETE }",
        "option httpchk",
        "http-check send meth GET uri /health/ ver HTTP/1.1 hdr Host cms.lan",
        "http-check expect status 200",
        "server node1 10.99.0.11:8000 check",
        "server node2 10.99.0.12:8000 check",
    ]
    assert "http-check send meth GET uri /api/health ver HTTP/1.1 hdr Host cms.lan" in lines
    assert "retry-on conn-failure empty-response response-timeout 502 503" in lines
    directives = " ".join(lines)
    assert "stick" not in directives and "cookie" not in directives
    assert "backup" not in directives
    assert haproxy_lb_argv(HaproxyLbParams("node1", NODES, ROUTES))[-1] == (
        "/etc/haproxy/hapair-http.cfg")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"nodes": ()}, "at least one"), ({"listen": "*"}, "not an IP"),
     ({"user": None}, "go together"), ({"health_host": "a b"}, "health_host")],
)
def test_haproxy_invalid(kwargs: dict, message: str) -> None:
    base = {"node_name": "node1", "nodes": NODES, "routes": ROUTES}
    with pytest.raises(UsageError, match=message):
        HaproxyLbParams(**{**base, **kwargs})


def test_lb_probe() -> None:
    assert lb_probe_argv(80, "/health/", "cms.lan") == [
        "curl", "-sS", "--max-time", "3", "-H", "Host: cms.lan", "-o", "-", "-w",
        "\n%{http_code}", "http://127.0.0.1:80/health/"]
    assert check_lb_answer(200, "node1", "/health/").ok
    assert check_lb_answer(503, "node1", "/health/").reason == (
        "node1: /health/ answered 503 through the load balancer (no upstream available)")
    assert "nothing answered" in check_lb_answer(0, "node2", "/").reason
