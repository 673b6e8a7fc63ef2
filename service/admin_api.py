"""The admin servicer: feeds live border waits into a running server."""

from __future__ import annotations

import time

import grpc

from geodata.border import WaitObservation
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from service.errors import grpc_errors
from service.state import ServingState


def observation_from_proto(message: admin_pb.BorderObservation) -> WaitObservation:
    return WaitObservation(
        port_number=message.port_number,
        lane=message.lane,
        wait_minutes=message.wait_minutes if message.HasField("wait_minutes") else None,
        observed_at_s=int(message.observed_at.seconds),
        operational_status=message.operational_status,
        lanes_open=message.lanes_open,
        closed=message.closed,
    )


def observation_to_proto(obs: WaitObservation) -> admin_pb.BorderObservation:
    message = admin_pb.BorderObservation(
        port_number=obs.port_number,
        lane=obs.lane,
        operational_status=obs.operational_status,
        lanes_open=obs.lanes_open,
        closed=obs.closed,
    )
    if obs.wait_minutes is not None:
        message.wait_minutes = obs.wait_minutes
    message.observed_at.FromSeconds(obs.observed_at_s)
    return message


class RouteRiskAdminServicer(admin_grpc.RouteRiskAdminServiceServicer):
    """Implements routerisk.v1.RouteRiskAdminService."""

    def __init__(self, state: ServingState) -> None:
        self._state = state

    @grpc_errors
    def LoadBorderObservations(
        self, request: admin_pb.LoadBorderObservationsRequest, context: grpc.ServicerContext
    ) -> admin_pb.LoadBorderObservationsResponse:
        observations = [observation_from_proto(m) for m in request.observations]
        accepted, stale, version = self._state.merge_observations(observations, int(time.time()))
        return admin_pb.LoadBorderObservationsResponse(accepted=accepted, stale=stale, border_data_version=version)
