"""The admin servicer: feeds live border waits into a running server."""

from __future__ import annotations

import time

import grpc

from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from service.grpc.admin_convert import observation_from_proto
from service.grpc.errors import grpc_errors
from service.store.serving import ServingState


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
