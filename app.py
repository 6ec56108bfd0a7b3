"""Wiring only: each decorator hands its trigger to ``chalicelib.handlers``.

Imports are kept lean because every Lambda function of this app (the SNS handler, each
EventBridge rule, the API) imports this module on its cold start: chalice and stdlib
here; pydantic, the pipeline and boto3 load on the first event, inside the handlers.
"""

import os

from chalice import AuthResponse, Chalice, Rate, Response
from chalice.app import AuthRequest, CloudWatchEvent, SNSEvent

from chalicelib import observability

# Before the decorators: sentry-sdk's Chalice integration wraps handlers declared after init.
observability.init_error_reporting()
observability.setup_logging()

app = Chalice(app_name="alarm-responder")

# CloudTrail S3 calls that can touch Object Lock protection (runbook §5.5).
OBJECT_LOCK_EVENT_NAMES = [
    "PutObjectRetention", "PutObjectLegalHold", "PutObjectLockConfiguration",
    "DeleteObject", "DeleteObjects", "PutBucketVersioning",
]


def _handlers():  # type: ignore[no-untyped-def]
    from chalicelib import handlers

    return handlers


def on_alarm_sns(event: SNSEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "sns")


# One subscription per topic named in the stage config (RESPONDER_ALARM_TOPICS, comma-separated).
for _i, _topic in enumerate(t.strip() for t in os.environ.get(
        "RESPONDER_ALARM_TOPICS", "alarm-responder-alerts").split(",") if t.strip()):
    app.on_sns_message(topic=_topic, name="on_alarm_sns" if _i == 0 else f"on_alarm_sns_{_i}")(on_alarm_sns)


@app.on_cw_event({"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]},
                 name="on_alarm_state_change")
def on_alarm_state_change(event: CloudWatchEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "eventbridge")


@app.on_cw_event({"source": ["aws.s3"], "detail-type": ["AWS API Call via CloudTrail"],
                  "detail": {"eventSource": ["s3.amazonaws.com"], "eventName": OBJECT_LOCK_EVENT_NAMES}},
                 name="on_cloudtrail_s3")
def on_cloudtrail_s3(event: CloudWatchEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "eventbridge")


@app.on_cw_event({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]},
                 name="on_ecs_deployment")
def on_ecs_deployment(event: CloudWatchEvent) -> dict:
    return _handlers().on_event(event.to_dict(), "eventbridge")


@app.schedule(Rate(1, unit=Rate.MINUTES), name="escalation_sweep")
def escalation_sweep(event: CloudWatchEvent) -> dict:
    """Durable timers: page the next escalation step, retry failed pages, use fallbacks."""
    return _handlers().sweep()


@app.schedule(Rate(5, unit=Rate.MINUTES), name="canary")
def canary(event: CloudWatchEvent) -> dict:
    """Self-monitoring: classify → store → pager on the canary channel, then a CanaryCompleted metric."""
    from chalicelib.canary import run_canary

    deps = _handlers().get_deps()
    return run_canary(deps, deps.clock())


@app.route("/webhooks/pagerduty", methods=["POST"],
           content_types=["application/json", "text/plain", "application/octet-stream"])
def pagerduty_webhook() -> Response:
    request = app.current_request
    result = _handlers().on_pagerduty_webhook(dict(request.headers), request.raw_body or b"")
    return Response(body=result.body, status_code=result.status, headers={"Content-Type": "application/json"})


# --- the incident API: bearer tokens; the authorizer identifies, each view checks the role ---


@app.authorizer(ttl_seconds=0)  # no policy cache: a revoked token stops working at once
def token_authorizer(auth_request: AuthRequest) -> AuthResponse:
    identity = _handlers().identify(auth_request.token)
    return AuthResponse(routes=["*"], principal_id=identity["user"], context=identity)


def _api(view_name: str, *args: object) -> Response:
    from chalicelib import api, handlers

    request = app.current_request
    principal = handlers.principal_from((request.context or {}).get("authorizer") or {})
    view = getattr(api, view_name)
    result = view(handlers.get_deps(), principal, *args)
    body = result.body
    return Response(body=body, status_code=result.status, headers=result.headers)


def _raw() -> bytes:
    return app.current_request.raw_body or b""


@app.route("/incidents", methods=["GET"], authorizer=token_authorizer)
def list_incidents() -> Response:
    return _api("list_incidents", dict(app.current_request.query_params or {}))


@app.route("/incidents/{incident_id}", methods=["GET"], authorizer=token_authorizer)
def get_incident(incident_id: str) -> Response:
    return _api("get_incident", incident_id)


@app.route("/incidents/{incident_id}/ack", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def ack_incident(incident_id: str) -> Response:
    return _api("acknowledge", incident_id, _raw())


@app.route("/incidents/{incident_id}/resolve", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def resolve_incident(incident_id: str) -> Response:
    return _api("resolve", incident_id, _raw())


@app.route("/incidents/{incident_id}/notes", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def add_note(incident_id: str) -> Response:
    return _api("add_note", incident_id, _raw())


@app.route("/incidents/{incident_id}/postmortem", methods=["GET"], authorizer=token_authorizer)
def incident_postmortem(incident_id: str) -> Response:
    return _api("postmortem", incident_id)


@app.route("/incidents/{incident_id}/phi-exposure", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def incident_phi_exposure(incident_id: str) -> Response:
    return _api("mark_phi_exposure", incident_id, _raw())


@app.route("/incidents/{incident_id}/duties/{kind}/done", methods=["POST"], authorizer=token_authorizer,
           content_types=["application/json", "text/plain"])
def incident_duty_done(incident_id: str, kind: str) -> Response:
    return _api("complete_duty", incident_id, kind)


@app.route("/tokens", methods=["POST"], authorizer=token_authorizer, content_types=["application/json"])
def create_token() -> Response:
    return _api("create_token", _raw())


@app.route("/tokens/{token_id}", methods=["DELETE"], authorizer=token_authorizer)
def revoke_token(token_id: str) -> Response:
    return _api("revoke_token", token_id)


# --- one-click ack links: the link is the credential; GET changes nothing ---


@app.route("/ack/{token}", methods=["GET"])
def ack_link_page(token: str) -> Response:
    from chalicelib import ackpage

    result = ackpage.show(_handlers().get_deps(), token)
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.route("/ack/{token}", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
def ack_link_submit(token: str) -> Response:
    from chalicelib import ackpage

    result = ackpage.submit(_handlers().get_deps(), token, dict(app.current_request.headers))
    return Response(body=result.body, status_code=result.status, headers=result.headers)


@app.route("/webhooks/sentry", methods=["POST"],
           content_types=["application/json", "text/plain", "application/octet-stream"])
def sentry_webhook() -> Response:
    request = app.current_request
    result = _handlers().on_sentry_webhook(dict(request.headers), request.raw_body or b"")
    return Response(body=result.body, status_code=result.status,
                    headers={"Content-Type": "application/json"})


@app.route("/health", methods=["GET"])
def health() -> dict:
    return _handlers().health()
