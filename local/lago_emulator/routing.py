"""Lago's routes (config/routes.rb), matched on the raw path as Rails matches them.

Rails matches a path segment before it decodes it, so an id must be percent-encoded to reach a
route: subscriptions and events take any segment without ``/`` (``[^/]+``); customers take Rails'
default segment, which also stops at ``.`` (a customer id with a dot reaches ``current_usage`` only
as ``%2E``); billable metric and plan codes take the rest of the path (``.*``). An unmatched path is
404 ``resource_not_found``, before any authentication.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from .errors import ApiError, bad_request, not_found

_ID = r"([^/]+)"  # constraints: {external_id: /[^\/]+/}, {id: /[^\/]+/}
_SEGMENT = r"([^/.?]+)"  # Rails' default segment
_REST = r"(.+)"  # code: /.*/ (greedy, as Rails builds it)
_FORMAT = r"(?:\.[^/.?]+)?"

_ROUTES = [(method, re.compile(f"/api/v1/{pattern}{_FORMAT}"), action, resource) for method, pattern, action, resource in (
    ("POST", "events/batch", "create_batch", "event"),
    ("POST", "events", "create_event", "event"),
    ("GET", "events", "list_events", "event"),
    ("GET", f"events/{_ID}", "find_event", "event"),
    ("POST", "billable_metrics", "create_metric", "billable_metric"),
    ("GET", "billable_metrics", "list_metrics", "billable_metric"),
    ("GET", f"billable_metrics/{_REST}", "find_metric", "billable_metric"),
    ("POST", "plans", "create_plan", "plan"),
    ("GET", "plans", "list_plans", "plan"),
    ("GET", f"plans/{_REST}", "find_plan", "plan"),
    ("POST", "customers", "create_customer", "customer"),
    ("GET", "customers", "list_customers", "customer"),
    ("GET", f"customers/{_SEGMENT}/current_usage", "current_usage", "customer_usage"),
    ("GET", f"customers/{_SEGMENT}", "find_customer", "customer"),
    ("POST", "subscriptions", "create_subscription", "subscription"),
    ("GET", "subscriptions", "list_subscriptions", "subscription"),
    ("GET", f"subscriptions/{_ID}", "find_subscription", "subscription"),
    ("DELETE", f"subscriptions/{_ID}", "terminate_subscription", "subscription"),
)]


@dataclass(frozen=True)
class Route:
    action: str
    resource: str  # for API key permissions
    params: tuple[str, ...]  # decoded path parameters


def match(method: str, raw_path: str) -> Route:
    """The route for a request; ApiError 404 when none matches, 400 when a parameter is not UTF-8."""
    for route_method, pattern, action, resource in _ROUTES:
        if route_method == method and (found := pattern.fullmatch(raw_path)):
            try:
                params = tuple(unquote(p, errors="strict") for p in found.groups())
            except UnicodeDecodeError:
                raise bad_request("invalid byte sequence in UTF-8") from None
            return Route(action, resource, params)
    raise not_found("resource")


__all__ = ["ApiError", "Route", "match"]
