"""publish_http: ``POST /v1/events`` (API Gateway HTTP API) into JetStream, for apps that count their own tokens.

Its own function, so that a burst on the UsageQueue never takes the concurrency API callers need.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from tokenmeter.core import UsageEvent, ascii_json
from tokenmeter.core.secrets import load_secret
from tokenmeter.ingestion.http_api import HttpSettings, Reply, handle_request
from tokenmeter.ingestion.runtime import Ingestion, publish_timeout, report
from tokenmeter.ingestion.sqs_batch import publish_or_fail
from tokenmeter.nats import PublishOutcome

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "publish_http"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tokenmeter"))
app = APIGatewayHttpResolver()

_runtime: tuple[Ingestion, HttpSettings] | None = None


def runtime() -> tuple[Ingestion, HttpSettings]:
    global _runtime
    if _runtime is None:
        _runtime = Ingestion.from_env(), HttpSettings.from_env(secret_loader=load_secret)
    return _runtime


@app.post("/v1/events")
def post_events() -> Response:
    ingestion, settings = runtime()
    timeout = publish_timeout(app.lambda_context)

    def publish(events: list[UsageEvent]) -> list[PublishOutcome]:
        return ingestion.nats.run(publish_or_fail(ingestion.nats, events, timeout))

    reply, outcomes = handle_request(app.current_event.raw_event, settings, publish, ingestion.contract)
    report(metrics, outcomes, rejected=0 if reply.status < 300 else len(reply.body.get("errors", {})))
    return _json(reply)


@app.route("/v1/events", method=["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def other_methods() -> Response:
    method = app.current_event.request_context.http.method
    return _json(Reply(405, {"error": "method_not_allowed", "message": f"{method} is not allowed; POST usage events"}))


def _json(reply: Reply) -> Response:
    return Response(status_code=reply.status, content_type=content_types.APPLICATION_JSON,
                    body=ascii_json(reply.body).decode())


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

