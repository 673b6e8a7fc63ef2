"""The admin servicer: feeds live border waits into a running server.

An observation stamped further ahead of the server's clock than ``max_clock_skew_s`` (default
5 min) is refused, the whole request with it (``INVALID_ARGUMENT`` naming
``observations[i].observed_at``): a reading from the future would be served with a negative age
and outrank every real one until its time came."""

from __future__ import annotations

import time

import grpc

from geodata.errors import InvalidRequestError, Violation
from routerisk.v1 import route_risk_admin_service_pb2 as admin_pb
from routerisk.v1 import route_risk_admin_service_pb2_grpc as admin_grpc
from service.grpc.admin_convert import observation_from_proto
from service.grpc.errors import grpc_errors
from service.store.serving import ServingState


class RouteRiskAdminServicer(admin_grpc.RouteRiskAdminServiceServicer):
    """Implements routerisk.v1.RouteRiskAdminService."""

    def __init__(self, state: ServingState, max_clock_skew_s: float = 300.0) -> None:
        self._state = state
        self._max_skew = max_clock_skew_s

    @grpc_errors
    def LoadBorderObservations(
        self, request: admin_pb.LoadBorderObservationsRequest, context: grpc.ServicerContext
    ) -> admin_pb.LoadBorderObservationsResponse:
        observations = [observation_from_proto(m) for m in request.observations]
        now_s = int(time.time())
        ahead = [
            Violation(
                f"observations[{i}].observed_at",
                f"observed_at {o.observed_at_s}s is {o.observed_at_s - now_s}s ahead of the server's clock "
                f"(allowance {self._max_skew:g}s)",
            )
            for i, o in enumerate(observations)
            if o.observed_at_s > now_s + self._max_skew
        ]
        if ahead:
            raise InvalidRequestError(ahead)
        accepted, stale, version = self._state.merge_observations(observations, now_s)
        return admin_pb.LoadBorderObservationsResponse(accepted=accepted, stale=stale, border_data_version=version)
