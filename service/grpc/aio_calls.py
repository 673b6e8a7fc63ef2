"""The asyncio server's one interceptor: a call that never completes its request costs a
coroutine, never a handler thread or a concurrency slot.

The thread server hands a call to a handler thread as its headers arrive, and the thread then
waits for the request message: 90 streams sending their headers and 2 bytes of their message
held every thread (health checks included) as long as their client liked, and 16 such streams
with one tenant's key held every concurrency slot (taken as the call arrived). Here:

- authentication is checked on the headers as the call arrives: a call without a valid key (or
  without the method's permission) is refused before its message is read;
- the request message is awaited on the event loop, at most ``read_timeout_s`` (then
  DEADLINE_EXCEEDED) or the call's own deadline;
- only then is the call admitted: one of the global concurrency slots and one of its tenant's
  (:class:`~service.grpc.limits.CallSlots`; RESOURCE_EXHAUSTED at once otherwise), its rate
  token, the server's deadline cap;
- the servicer's (synchronous, CPU-bound) method runs on a pool of exactly as many threads as
  there are slots, so an admitted call never queues; the slot is given back when that thread is
  done, also when the client went away before. A ScoreRoute answer already in this process's
  memory (``ScoreHandler.memorised``: no I/O, a small request) is given on the loop instead: the
  round trip to a thread would cost more than the answer.

Unary methods are registered with grpc as stream-unary ones, so that the wrapper runs as the
call arrives and reads the one request itself (with its timeout); on the wire nothing differs.
MonitorTrip streams are admitted as they arrive against their own caps, global and per tenant
(:meth:`~service.grpc.limits.LimitsInterceptor.open_stream`), and hold no thread between
positions. Metrics and the one log line per call are those of :mod:`service.grpc.interceptor`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import Executor, Future
from typing import Any, NamedTuple, NoReturn

import grpc

from service.grpc import request_log
from service.grpc.auth import TENANT, AuthInterceptor
from service.grpc.interceptor import MethodInfo, finish
from service.grpc.limits import DEADLINE, CallSlots, LimitsInterceptor
from service.grpc.metrics import stream_code
from service.grpc.request_log import _CALL, CallInfo, request_id_from

_CODES = {code.value[0]: code for code in grpc.StatusCode}
Refusal = tuple[grpc.StatusCode, str]
AsyncContinuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class Aborted(Exception):
    """A synchronous behaviour called ``context.abort``: its coroutine ends the call so."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any = None) -> None:
        super().__init__(details)
        self.code, self.details, self.trailing = code, details, trailing


class ThreadContext:
    """The servicer context a synchronous behaviour gets on a pool thread: the asyncio call's,
    with the thread server's methods the servicers and :mod:`~service.grpc.metrics` use.
    ``abort`` raises :class:`Aborted`, which the call's coroutine turns into the status."""

    __slots__ = ("_context",)

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def time_remaining(self) -> float | None:
        return self._context.time_remaining()

    def peer(self) -> str:
        return self._context.peer()

    def set_code(self, code: grpc.StatusCode) -> None:
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        self._context.set_details(details)

    def set_trailing_metadata(self, metadata: Any) -> None:
        self._context.set_trailing_metadata(metadata)

    def trailing_metadata(self) -> Any:
        return self._context.trailing_metadata()

    def code(self) -> grpc.StatusCode | None:
        """The code set so far, as a ``StatusCode`` (the asyncio context may keep its number)."""
        code = self._context.code()
        return _CODES.get(code) if isinstance(code, int) else code

    def is_active(self) -> bool:
        return not self._context.done()

    def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = None) -> NoReturn:
        raise Aborted(code, details, trailing_metadata)

    def abort_with_status(self, status: Any) -> NoReturn:
        raise Aborted(status.code, status.details, status.trailing_metadata)


class AsyncCallInterceptor(grpc.aio.ServerInterceptor):
    """Authentication on arrival, admission once the request is complete, the work on ``pool``
    (see the module doc); the rules of keys, rates and stream caps are those of ``auth`` and
    ``limits``."""

    def __init__(
        self,
        auth: AuthInterceptor,
        limits: LimitsInterceptor,
        slots: CallSlots,
        pool: Executor,
        read_timeout_s: float,
        memorised: Mapping[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self._memorised = dict(memorised or {})
        self._auth = auth
        self._limits = limits
        self._slots = slots
        self._pool = pool
        self._read_timeout_s = read_timeout_s
        self._methods: dict[str, MethodInfo] = {}

    def _method(self, full_method: str) -> MethodInfo:
        found = self._methods.get(full_method)
        if found is None:  # only methods with a handler get here: the table stays as small as the API
            found = self._methods[full_method] = MethodInfo(full_method)
        return found

    async def intercept_service(
        self, continuation: AsyncContinuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method = self._method(details.method)
        if handler.request_streaming or handler.response_streaming:
            if handler.stream_stream is None or method.needed is None:
                return handler  # health's Watch, reflection: open, and hold no thread here either
            tenant, refusal = self._authenticate(method, details)
            call = functools.partial(self._stream, method, handler.stream_stream, tenant, refusal)
            return grpc.stream_stream_rpc_method_handler(
                call, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_unary is None:
            return handler
        tenant, refusal = self._authenticate(method, details)
        behaviour = _Behaviour(handler.unary_unary, self._memorised.get(details.method))
        unary = functools.partial(self._unary, method, behaviour, tenant, refusal)
        return grpc.stream_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)

    def _authenticate(self, method: MethodInfo, details: grpc.HandlerCallDetails) -> tuple[str, Refusal | None]:
        """The call's tenant (``-`` without authentication), or why it is refused, from its headers."""
        if not self._auth._keys or method.needed is None:
            return "-", None
        key = self._auth.presented_key(details)
        if key is None:
            return "-", (grpc.StatusCode.UNAUTHENTICATED, "a valid API key is required (authorization: Bearer)")
        if method.needed not in key.permissions:
            denied = f"this API key lacks the {method.needed!r} permission"
            return key.tenant, (grpc.StatusCode.PERMISSION_DENIED, denied)
        return key.tenant, None

    async def _unary(
        self,
        method: MethodInfo,
        behaviour: _Behaviour,
        tenant: str,
        refusal: Refusal | None,
        requests: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
    ) -> Any:
        """One unary call, from its arrival: refuse, or read the request, admit it, run it; then
        the log line and the metrics."""
        start = time.perf_counter()
        facade = ThreadContext(context)
        call = CallInfo(request_id_from(context.invocation_metadata()), method.method, tenant=tenant)
        token = _CALL.set(call)
        TENANT.set(tenant)  # this call's task has a context of its own
        raised: BaseException | None = None
        try:
            if refusal is not None:
                await context.abort(*refusal)  # the request is never read
            request = await self._read(context)
            if method.needed is None:  # an open method (health): observed and logged only
                return await self._open(behaviour.run, request, context, facade)
            return await self._admitted(behaviour, tenant, request, context, facade)
        except asyncio.CancelledError:
            raise  # the client went away: counted as CANCELLED (no code, context done)
        except BaseException as exc:
            raised = exc
            raise
        finally:
            finish(facade, call, method, start, raised, token)

    async def _read(self, context: grpc.aio.ServicerContext) -> Any:
        """The request message, once complete: a client that does not finish sending it within
        the read timeout (or its own deadline) gets DEADLINE_EXCEEDED, having held no thread."""
        remaining = context.time_remaining()
        timeout = self._read_timeout_s if remaining is None else min(remaining, self._read_timeout_s)
        try:
            async with asyncio.timeout(timeout):  # no task of its own, unlike asyncio.wait_for
                request = await context.read()
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"the request message was not complete within {timeout:g}s"
            )
        if request is grpc.aio.EOF:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call ended without a request message")
        return request

    async def _open(
        self, behaviour: Callable[..., Any], request: Any, context: grpc.aio.ServicerContext, facade: ThreadContext
    ) -> Any:
        if asyncio.iscoroutinefunction(behaviour):
            return await behaviour(request, context)
        return await self._run(behaviour, request, context, facade, lambda: None)

    async def _admitted(
        self,
        behaviour: _Behaviour,
        tenant: str,
        request: Any,
        context: grpc.aio.ServicerContext,
        facade: ThreadContext,
    ) -> Any:
        """Take a concurrency slot (global and the tenant's) and a rate token, set the deadline,
        run ``behaviour`` on the pool; the slot is given back when its thread is done."""
        busy = self._slots.take(tenant)
        if busy is not None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, busy)
        limited = self._limits.rate_refusal(tenant)
        if limited is not None:
            self._slots.give_back(tenant)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, limited)
        try:
            if behaviour.memorised is not None:
                answer = behaviour.memorised(request)
                if answer is not None:  # in memory already: answered here, without a thread
                    self._slots.give_back(tenant)
                    return answer
            DEADLINE.set(time.monotonic() + self._limits.budget(context.time_remaining()))
            work = self._submit(behaviour.run, request, facade, lambda: self._slots.give_back(tenant))
        except BaseException:  # nothing reached a thread: the slot is given back here, not by one
            self._slots.give_back(tenant)
            raise
        return await self._result(work, context)

    async def _run(
        self,
        behaviour: Callable[..., Any],
        request: Any,
        context: grpc.aio.ServicerContext,
        facade: ThreadContext,
        done: Callable[[], None],
    ) -> Any:
        """``behaviour`` on a pool thread, in a copy of this call's context (tenant, deadline, log
        context); ``done`` runs when the thread is done (or the work was cancelled before it began)."""
        return await self._result(self._submit(behaviour, request, facade, done), context)

    def _submit(
        self, behaviour: Callable[..., Any], request: Any, facade: ThreadContext, done: Callable[[], None]
    ) -> Future[Any]:
        """The work on a pool thread; ``done`` runs once it ends (or is cancelled before it began)."""
        work: Future[Any] = self._pool.submit(contextvars.copy_context().run, behaviour, request, facade)
        work.add_done_callback(lambda _work: done())
        return work

    async def _result(self, work: Future[Any], context: grpc.aio.ServicerContext) -> Any:
        try:
            return await asyncio.wrap_future(work)
        except Aborted as exc:
            await context.abort(exc.code, exc.details, exc.trailing)

    async def _stream(
        self,
        method: MethodInfo,
        behaviour: Callable[..., AsyncIterator[Any]],
        tenant: str,
        refusal: Refusal | None,
        requests: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[Any]:
        """One trip stream: refused or admitted as it arrives, its slots held until it ends; one
        log line (with the responses sent) and one count when it ends."""
        start = time.perf_counter()
        call = CallInfo(request_id_from(context.invocation_metadata()), method.method, tenant=tenant)
        _CALL.set(call)
        TENANT.set(tenant)
        raised: BaseException | None = None
        sent = 0
        opened = False
        try:
            if refusal is None:
                refusal = _exhausted(self._limits.open_stream(tenant))
                opened = refusal is None
            if refusal is not None:
                await context.abort(*refusal)
            try:
                async for response in behaviour(requests, context):
                    sent += 1
                    yield response
            finally:
                if opened:
                    self._limits.close_stream(tenant)
        except BaseException as exc:
            raised = exc
            raise
        finally:
            code = stream_code(ThreadContext(context), None if isinstance(raised, asyncio.CancelledError) else raised)
            request_log._finish(ThreadContext(context), call, method.service, start, code=code, messages=sent)
            method.count(code)


class _Behaviour(NamedTuple):
    """A unary method's servicer behaviour (run on a thread) and, for ScoreRoute, its answer
    from memory (run on the loop; None when it has none)."""

    run: Callable[..., Any]
    memorised: Callable[[Any], Any] | None


def _exhausted(message: str | None) -> Refusal | None:
    return None if message is None else (grpc.StatusCode.RESOURCE_EXHAUSTED, message)
