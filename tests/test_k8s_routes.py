"""Kube and Gateway API routes against the transport-level fake API server: a kind the server does
not serve (CRDs absent) is KindNotServedError, found again once served; deletes by name tolerate
both a missing route and a missing kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.test_k8s_call import DISCOVERY, Answer, Call, _kube, _not_found, _resources
from voxscale import names
from voxscale.k8s import KindNotServedError

GATEWAY_API = f"/apis/{names.GATEWAY_API_VERSION}"
ROUTE = {"apiVersion": names.GATEWAY_API_VERSION, "kind": "GRPCRoute",
         "metadata": {"name": "asr", "namespace": "speech"}, "spec": {"rules": []}}


@pytest.fixture
def install_gateway_api() -> Iterator[Callable[[], None]]:
    """Adds the Gateway API group to the fake's discovery (as installing its CRDs does); undone after."""
    saved = DISCOVERY["/apis"]

    def install() -> None:
        DISCOVERY[GATEWAY_API] = _resources(names.GATEWAY_API_VERSION, *names.ROUTE_KINDS.values())
        group = {"name": names.GATEWAY_API_GROUP,
                 "versions": [{"groupVersion": names.GATEWAY_API_VERSION, "version": "v1"}],
                 "preferredVersion": {"groupVersion": names.GATEWAY_API_VERSION, "version": "v1"}}
        DISCOVERY["/apis"] = {**saved, "groups": [*saved["groups"], group]}

    yield install
    DISCOVERY["/apis"] = saved
    DISCOVERY.pop(GATEWAY_API, None)


def test_a_route_kind_the_server_does_not_serve_is_kind_not_served_and_nothing_is_sent() -> None:
    kube, server = _kube()
    with pytest.raises(KindNotServedError, match=r"serves no GRPCRoute in gateway\.networking\.k8s\.io/v1"):
        kube.apply(ROUTE)
    assert server.calls == []
    kube.delete_object(names.GATEWAY_API_VERSION, "HTTPRoute", "speech", "asr")  # no error either
    assert server.calls == []


def test_once_the_crds_are_installed_the_same_kube_finds_the_kind(
    install_gateway_api: Callable[[], None],
) -> None:
    kube, server = _kube()
    with pytest.raises(KindNotServedError):
        kube.apply(ROUTE)
    install_gateway_api()
    kube.apply(ROUTE)  # the miss was not kept: discovery is asked again
    assert server.calls[-1].path == "/apis/gateway.networking.k8s.io/v1/namespaces/speech/grpcroutes/asr"


def test_a_route_is_deleted_by_name_and_one_already_gone_is_no_error(
    install_gateway_api: Callable[[], None],
) -> None:
    def answer(call: Call) -> Answer:
        return _not_found(call)

    install_gateway_api()
    kube, server = _kube(answer)
    kube.delete_object(names.GATEWAY_API_VERSION, "GRPCRoute", "speech", "asr")
    [call] = server.calls
    assert call.method == "DELETE"
    assert call.path == "/apis/gateway.networking.k8s.io/v1/namespaces/speech/grpcroutes/asr"
