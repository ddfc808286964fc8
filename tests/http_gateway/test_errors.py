"""Engine errors get their status in one place (http_gateway/errors.py), the most specific class first."""

from __future__ import annotations

import pytest

from engine.errors import (
    BackendUnavailable,
    ClipporaError,
    InvalidMedia,
    InvalidOptions,
    JobCancelled,
    NotFound,
    PermanentError,
    PipelineUnavailable,
    RetryableError,
)
from http_gateway.errors import engine_status
from http_gateway.url_policy import UrlRefused


@pytest.mark.parametrize(("error", "status"), [
    (InvalidOptions("numClips out of range", field="numClips"), 400),
    (InvalidMedia("no video stream"), 400),
    (PermanentError("cannot be done"), 400),
    (UrlRefused("not a public address"), 400),
    (NotFound("job not found"), 404),
    (JobCancelled(), 409),
    (RetryableError("busy"), 503),
    (BackendUnavailable("no CUDA here"), 503),
    (PipelineUnavailable("the queue is full"), 503),
    (ClipporaError("something else"), 500),
])
def test_each_engine_error_has_its_status(error, status):
    assert engine_status(error) == status


def test_job_events_have_the_websocket_shape():
    from engine.events import JobEvent
    from http_gateway.shapes import event_json

    progress = JobEvent("j1", "progress", "render", 0.51234, "frame 10/40", stage_progress=0.25)
    assert event_json(progress) == {"type": "progress", "jobId": "j1", "stage": "render", "progress": 0.5123,
                                    "stageProgress": 0.25, "message": "frame 10/40"}
    done = JobEvent("j1", "completed", status="completed", progress=1.0, message="2 clips ready",
                    extra={"clipCount": 2})
    assert event_json(done) == {"type": "completed", "jobId": "j1", "status": "completed",
                                "message": "2 clips ready", "clipCount": 2}
    # an event crosses a process boundary unchanged
    assert JobEvent.from_record("j1", progress.to_record()) == progress


def test_the_openapi_document_lists_the_statuses_these_routes_answer_with():
    from http_gateway.openapi import build_document

    paths = build_document()["paths"]
    assert {"413", "429"} <= set(paths["/api/auth/signup"]["post"]["responses"])
    assert {"413", "429"} <= set(paths["/api/auth/login"]["post"]["responses"])
    assert {"413", "429", "503"} <= set(paths["/api/upload"]["post"]["responses"])
    assert {"413", "429"} <= set(paths["/api/upload/url"]["post"]["responses"])
    artifact = paths["/api/clips/{jobId}/{filename}"]["get"]["responses"]
    assert {"206", "304", "416"} <= set(artifact) and "application/json" in artifact["416"]["content"]
