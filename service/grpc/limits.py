"""Load limits that shed instead of falling over, as a gRPC server interceptor (the thread
server's; the asyncio server applies the same rules from :mod:`service.grpc.aio_calls`).

- at most ``max_concurrent`` API calls admitted at once, running or waiting for a handler
  thread (a non-blocking semaphore taken as the call arrives on the thread server; on the asyncio
  server once its request is complete, with a cap per tenant too: :class:`CallSlots`): the next
  one gets RESOURCE_EXHAUSTED at once, without queueing behind the others, while health checks,
  which are not limited and have spare handler threads, keep answering;
- a token bucket per tenant (``rate_per_second``, ``burst``): RESOURCE_EXHAUSTED past it;
- a server-side deadline for calls that arrive without one (or with a longer one): long
  loops (batches, comparisons) check it between items and stop with DEADLINE_EXCEEDED.

Streams (MonitorTrip) live for a whole trip, so they must not hold one of the API slots: they
have their own cap, ``max_streams`` (RESOURCE_EXHAUSTED past it), on handler threads of their
own (the server's pool is ``max_concurrent + max_streams + spare``), so open trips can never
starve unary calls or health checks. One tenant may hold at most ``max_streams_per_tenant`` of
them (0: half of ``max_streams``), so a tenant at its cap cannot take the others' streams (without
authentication every caller is one tenant, and the global cap is the only one). Opening a stream
takes one token of the tenant's bucket; its messages take none. No server-side deadline applies
to a stream (it ends when the client closes it, its own deadline passes or it goes away); its
slots are released then.
"""

from __future__ import annotations

import contextvars
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal

import grpc

from service.grpc.auth import TENANT, permission_for

DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


class DeadlineExceededError(TimeoutError):
    """The call ran past its (possibly server-capped) deadline."""


def check_deadline() -> None:
    """Raise :class:`DeadlineExceededError` when the current call's deadline has passed."""
    deadline = DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceededError("the call ran past its deadline")


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens, self._at = burst, clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class Slots:
    """A counting semaphore that never waits: :meth:`try_acquire` takes a slot or says there is
    none; releasing more than was taken is an error, as for ``threading.BoundedSemaphore``. One C
    lock instead of the Python ``Condition`` a ``threading`` semaphore takes per call."""

    def __init__(self, count: int) -> None:
        self._count = self._free = count
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self._free > 0:
                self._free -= 1
                return True
            return False

    def release(self) -> None:
        with self._lock:
            if self._free >= self._count:
                raise ValueError("slots released too many times")
            self._free += 1


class LimitsInterceptor(grpc.ServerInterceptor):
    """Concurrency cap, per-tenant rate limit and deadline cap for the API methods."""

    def __init__(
        self,
        max_concurrent: int,
        rate_per_second: float,
        burst: float,
        deadline_cap_s: float,
        max_streams: int = 0,
        max_streams_per_tenant: int = 0,
    ) -> None:
        self._slots = Slots(max_concurrent) if max_concurrent > 0 else None
        self._stream_slots = Slots(max_streams) if max_streams > 0 else None
        self._max_streams = max_streams
        self._tenant_streams = TenantSlots(max_streams_per_tenant or max(1, max_streams // 2))
        self._max = max_concurrent
        self._rate, self._burst = rate_per_second, max(burst, 1.0)
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        self._cap = deadline_cap_s

    def rate_refusal(self, tenant: str) -> str | None:
        """Why a call of ``tenant`` is refused by its rate limit now (one token taken otherwise)."""
        if self._rate > 0 and not self._bucket(tenant).take():
            return f"rate limit of {self._rate:g}/s exceeded; retry later"
        return None

    def budget(self, remaining: float | None) -> float:
        """Seconds a call may run: its own deadline's remainder, at most the server's cap."""
        return self._cap if remaining is None else min(remaining, self._cap)

    def _bucket(self, tenant: str) -> TokenBucket:
        with self._buckets_lock:
            bucket = self._buckets.get(tenant)
            if bucket is None:
                bucket = self._buckets[tenant] = TokenBucket(self._rate, self._burst)
            return bucket

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        handler = continuation(details)
        if permission_for(details.method) is None or handler is None:
            return handler
        if handler.stream_stream is not None:
            return self._limited_stream(handler)
        if handler.unary_unary is None:
            return handler
        behaviour = handler.unary_unary
        # Admission happens here, as the call arrives (gRPC's polling thread), not when a handler
        # thread gets to it: a call refused at arrival never waits in the executor's queue, and the
        # queue holds at most ``max_concurrent`` admitted calls, so they keep their latency.
        slot = self._admit()
        if slot is False:
            return handler._replace(unary_unary=self._busy)

        def limited(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                limited = self.rate_refusal(TENANT.get())
                if limited is not None:
                    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, limited)
                token = DEADLINE.set(time.monotonic() + self.budget(context.time_remaining()))
                try:
                    return behaviour(request, context)
                finally:
                    DEADLINE.reset(token)
            finally:
                if slot is not None:
                    slot.release()

        if slot is not None:
            # a call cancelled before a thread took it never runs ``limited``: its slot is given
            # back when gRPC drops the handler
            weakref.finalize(limited, slot.release)
        return handler._replace(unary_unary=limited)

    def _admit(self) -> _Slot | Literal[False] | None:
        """A slot for one call (None: no cap), or False when every slot is taken."""
        if self._slots is None:
            return None
        if not self._slots.try_acquire():
            return False
        return _Slot(self._slots)

    def _busy(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"server busy ({self._max} calls in flight); retry")

    def _limited_stream(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        streams = handler.stream_stream

        def limited(requests: Any, context: grpc.ServicerContext) -> Any:
            tenant = TENANT.get()
            refusal = self.open_stream(tenant)
            if refusal is not None:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
            try:
                yield from streams(requests, context)
            finally:
                self.close_stream(tenant)

        return handler._replace(stream_stream=limited)

    def open_stream(self, tenant: str) -> str | None:
        """Admit one trip stream of ``tenant`` (its rate token, its tenant's and the global cap),
        or say why not (nothing is held then)."""
        refusal = self.rate_refusal(tenant)
        if refusal is not None:
            return refusal
        # "-": authentication is off, every caller is one tenant and the global cap is the only one
        counted = tenant != "-"
        if counted and not self._tenant_streams.take(tenant):
            return f"this tenant has {self._tenant_streams.cap} trip streams open; close one or retry later"
        if self._stream_slots is not None and not self._stream_slots.try_acquire():
            if counted:
                self._tenant_streams.give_back(tenant)
            return f"server busy ({self._max_streams} streams open); retry"
        return None

    def close_stream(self, tenant: str) -> None:
        """Give back what :meth:`open_stream` took for a stream that ended."""
        if self._stream_slots is not None:
            self._stream_slots.release()
        if tenant != "-":
            self._tenant_streams.give_back(tenant)


class CallSlots:
    """Concurrency slots of API calls: ``count`` in all, ``per_tenant`` of them for one tenant
    (tenant ``-``, authentication off, has only the global cap). Taken once a call's request is
    complete, given back when its handler thread is done (:mod:`service.grpc.aio_calls`)."""

    def __init__(self, count: int, per_tenant: int, slots: Slots | None = None) -> None:
        self.count = count
        self._slots = slots if slots is not None else Slots(count)  # ``slots``: shared with another user
        self._tenants = TenantSlots(per_tenant or max(1, count // 2))

    def take(self, tenant: str) -> str | None:
        """One slot for a call of ``tenant``, or why there is none (nothing is held then)."""
        counted = tenant != "-"
        if counted and not self._tenants.take(tenant):
            return f"this tenant has {self._tenants.cap} calls in flight; retry"
        if not self._slots.try_acquire():
            if counted:
                self._tenants.give_back(tenant)
            return f"server busy ({self.count} calls in flight); retry"
        return None

    def give_back(self, tenant: str) -> None:
        self._slots.release()
        if tenant != "-":
            self._tenants.give_back(tenant)


class TenantSlots:
    """Slots per tenant (open trip streams, calls in flight), at most ``cap`` each."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, tenant: str) -> bool:
        with self._lock:
            held = self._open.get(tenant, 0)
            if held >= self.cap:
                return False
            self._open[tenant] = held + 1
            return True

    def give_back(self, tenant: str) -> None:
        with self._lock:
            held = self._open.get(tenant, 0) - 1
            if held > 0:
                self._open[tenant] = held
            else:
                self._open.pop(tenant, None)


class _Slot:
    """One acquired slot of the semaphore, released exactly once."""

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._slots.release()
