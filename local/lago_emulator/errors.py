"""Lago's error bodies (app/controllers/concerns/api_errors.rb, api_responses.rb)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An answer other than 200: a status and Lago's JSON body for it."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(status)
        self.status, self.body = status, body


def validation_error(details: Any) -> ApiError:
    return ApiError(422, {"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                          "error_details": details})


def not_found(resource: str) -> ApiError:
    return ApiError(404, {"status": 404, "error": "Not Found", "code": f"{resource}_not_found"})


def bad_request(message: str) -> ApiError:
    """400 carries no ``code``: only ``status`` and ``error``."""
    return ApiError(400, {"status": 400, "error": f"BadRequest: {message}"})


def unauthorized() -> ApiError:
    return ApiError(401, {"status": 401, "error": "Unauthorized"})


def forbidden(code: str) -> ApiError:
    return ApiError(403, {"status": 403, "error": "Forbidden", "code": code})


def method_not_allowed(code: str) -> ApiError:
    return ApiError(405, {"status": 405, "error": "Method Not Allowed", "code": code})
