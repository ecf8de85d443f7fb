"""OFREP, the OpenFeature Remote Evaluation Protocol: flaggery's flags for any OpenFeature
SDK's generic OFREP provider. An adapter over the snapshot: `codec` (wire format), `mapping`
(the engine's explanation -> OFREP reasons and metadata, one table), `answers` (encoded once
per view), `events` (the SSE stream), `app` (the routes, served by `flaggery.http`).

Nothing is imported here, so the in-process provider (`flaggery.openfeature`) can use the
mapping without loading the HTTP server.
"""
