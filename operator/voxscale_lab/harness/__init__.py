"""The one harness for real parts, shared by the demo, the integration tests and e2e.

`ports` (free_port), `waiting` (eventually), `prometheus` (a real server, promtool backfill),
`backfill` (a counter history from a rate), `operator_process` (`voxscale run` as a subprocess),
`manifests` (the CRD and the example SpeechCluster), `front_door` (the operator's rendered Gateway
API route as haproxy.cfg) and `haproxy` (a real HAProxy running it, workers changed at run time).
Modules are imported by name: nothing here is loaded eagerly, so `devcluster` may use `ports`
while `manifests` uses `devcluster`.
"""
