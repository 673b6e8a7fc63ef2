"""The floor: a bare grpcio unary service that answers every request with a fixed payload.

The same number of handler threads as the ``routerisk serve`` it is compared with, no
interceptors, no (de)serialisation: what Python gRPC itself costs per call on this machine.

    python -m bench.echo --address 127.0.0.1:50099 --response-bytes 1200 [--workers 2] [--threads 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from concurrent import futures

import grpc

METHOD = "/bench.v1.EchoService/Echo"


def serve(address: str, response: bytes, threads: int, reuse_port: bool, children: tuple[int, ...] = ()) -> None:
    """Serve until SIGTERM (passed on to ``children``); prints nothing."""
    handler = grpc.unary_unary_rpc_method_handler(lambda _request, _context: response)
    service = grpc.method_handlers_generic_handler("bench.v1.EchoService", {"Echo": handler})
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        handlers=[service],
        options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    server.add_insecure_port(address)
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--response-bytes", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=20)
    args = parser.parse_args()
    response = os.urandom(args.response_bytes)
    children = []
    for _ in range(args.workers - 1):  # forked processes sharing the port, like serve --workers
        pid = os.fork()
        if pid == 0:
            serve(args.address, response, args.threads, True)
            os._exit(0)
        children.append(pid)
    serve(args.address, response, args.threads, args.workers > 1, tuple(children))
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
