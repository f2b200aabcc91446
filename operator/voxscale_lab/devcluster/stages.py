"""kwok Stages that play the kubelet: Running at once, Ready after the pod's warm-up, gone after grace.

Mechanism of the warm-up delay (kwok v0.7 `delay.durationFrom`): kwok evaluates a jq expression
on the pod and parses the result either as an RFC 3339 time (delay = that time − now) or as a Go
duration string. Our annotation holds plain seconds ("20"), so the expression appends the unit:
`"20" + "s"` → 20 s. The delay starts when the pod enters the stage, i.e. once it is Running, so
created→Ready ≈ scheduling (< 1 s) + warm-up. Pods without the annotation get "0s": Ready at once.

Termination: a deleted pod's `metadata.deletionTimestamp` is *deletion time + grace period*, an
absolute time, so `durationFrom: .metadata.deletionTimestamp` waits out exactly the grace period
(30 s by default, 0 s for `--grace-period=0`) before kwok removes the pod — as a kubelet would
for a container that ignores SIGTERM.

Ready driven from outside (`pod_stages(ready_annotation=KEY)`, used by `voxscale demo`): the
Ready stage then waits for no timer but selects pods whose annotation KEY is "true". Whoever
really runs the pod's workload (the demo's pod-to-process bridge, once its Triton worker has
loaded the model) sets that annotation, so Ready means "a real server answers", not "time passed".
"""

from __future__ import annotations

from typing import Any

from voxscale import names

WARMUP_EXPRESSION = f'(.metadata.annotations["{names.ANNOTATION_WARMUP_SECONDS}"] // "0") + "s"'
# The annotation the demo's bridge sets once a pod's worker process has loaded its model.
WORKER_LOADED_ANNOTATION = f"{names.GROUP}/worker-loaded"

_POD_IPS = (
    "hostIP: {{ NodeIPWith .spec.nodeName | Quote }}\n"
    "podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid \"\" )"
    ' ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}\n'
)


def _condition(kind: str, status: str, reason: str = "null") -> str:
    # Conditions are merged by type, so a Ready=True must null the WarmingUp reason explicitly.
    now = "{{ $now | Quote }}"
    return f'- {{type: {kind}, status: "{status}", reason: {reason}, lastTransitionTime: {now}}}\n'


def _containers(ready: bool, started: str) -> str:
    return (
        "containerStatuses:\n{{ range .spec.containers }}\n"
        f"- {{name: {{{{ .name | Quote }}}}, image: {{{{ .image | Quote }}}}, "
        f"ready: {str(ready).lower()}, restartCount: 0, started: true, "
        f"state: {{running: {{startedAt: {{{{ {started} | Quote }}}}}}}}}}\n"
        "{{ end }}\n"
    )


_RUNNING_NOT_READY = (
    "{{ $now := Now }}\nconditions:\n"
    + _condition("Initialized", "True")
    + _condition("PodReadyToStartContainers", "True")
    + _condition("ContainersReady", "False", "WarmingUp")
    + _condition("Ready", "False", "WarmingUp")
    + _containers(ready=False, started="$now")
    + _POD_IPS
    + "phase: Running\nstartTime: {{ $now | Quote }}\n"
)

_READY = (
    "{{ $now := Now }}\n{{ $started := or .status.startTime $now }}\nconditions:\n"
    + _condition("ContainersReady", "True")
    + _condition("Ready", "True")
    + _containers(ready=True, started="$started")
)


def _jq(key: str, operator: str, *values: str) -> dict[str, Any]:
    selector: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        selector["values"] = list(values)
    return {"jq": selector}


def _stage(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"resourceRef": {"apiGroup": "v1", "kind": "Pod"}, **spec}
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": body}


def _ready_when(ready_annotation: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Extra selectors and the delay of the Ready stage: the warm-up timer, or an annotation."""
    if ready_annotation is None:
        return [], {"durationMilliseconds": 0, "durationFrom": {"jq": {"expression": WARMUP_EXPRESSION}}}
    return [_jq(f'.metadata.annotations["{ready_annotation}"]', "In", "true")], {"durationMilliseconds": 0}


def pod_stages(ready_annotation: str | None = None) -> list[dict[str, Any]]:
    """The three pod stages: scheduled → Running (not Ready) → Ready after warm-up; deleted → gone.

    With `ready_annotation`, Ready comes when that annotation reads "true" instead of after the
    warm-up annotation's delay.
    """
    not_deleted = _jq(".metadata.deletionTimestamp", "DoesNotExist")
    ready_status = '.status.conditions.[] | select( .type == "Ready" ) | .status'
    running = _stage("voxscale-pod-running", {
        "selector": {"matchExpressions": [not_deleted, _jq(".status.podIP", "DoesNotExist")]},
        "next": {"statusTemplate": _RUNNING_NOT_READY},
    })
    gate, delay = _ready_when(ready_annotation)
    ready = _stage("voxscale-pod-ready", {
        "selector": {"matchExpressions": [
            not_deleted, _jq(".status.podIP", "Exists"), _jq(ready_status, "In", "False"), *gate,
        ]},
        "delay": delay,
        "next": {"statusTemplate": _READY},
    })
    delete = _stage("voxscale-pod-delete", {
        "selector": {"matchExpressions": [
            _jq(".metadata.deletionTimestamp", "Exists"), _jq(".metadata.finalizers", "DoesNotExist"),
        ]},
        "delay": {
            "durationMilliseconds": 0,
            "durationFrom": {"jq": {"expression": ".metadata.deletionTimestamp"}},
        },
        "next": {"delete": True},
    })
    return [running, ready, delete]
