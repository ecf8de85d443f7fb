"""OFREP, the OpenFeature Remote Evaluation Protocol: flaggery's flags for any OpenFeature
SDK's generic OFREP provider. An adapter over the snapshot: `wire` (the wire format),
`answers` (encoded once per view), `events` (the SSE stream), `app` (the routes, served by
`flaggery.http`). The engine's explanation becomes OFREP's reasons and metadata in
`flaggery.flag_evaluation`, one table shared with the in-process OpenFeature provider.
"""
