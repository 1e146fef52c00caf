"""HTTP load balancer after the upgrade (see config.py for the HAProxy-by-default choice)."""

from hapair.components.http_lb.config import (
    DEFAULT_KIND,
    HTTP_PROXIES,
    HaproxyLbParams,
    HttpNode,
    LbKind,
    NginxLbParams,
    check_lb_answer,
    haproxy_lb_argv,
    lb_probe_argv,
    nginx_argv,
    nginx_test_argv,
    render_haproxy_lb_config,
    render_nginx_config,
)
from hapair.components.http_lb.routes import Route, RouteTable

__all__ = [
    "DEFAULT_KIND",
    "HTTP_PROXIES",
    "HaproxyLbParams",
    "HttpNode",
    "LbKind",
    "NginxLbParams",
    "Route",
    "RouteTable",
    "check_lb_answer",
    "haproxy_lb_argv",
    "lb_probe_argv",
    "nginx_argv",
    "nginx_test_argv",
    "render_haproxy_lb_config",
    "render_nginx_config",
]
