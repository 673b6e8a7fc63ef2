"""Raw HTTP/2 streams to a gRPC server, built with ``h2``: what a gRPC client will not send, such
as a call whose request message never completes."""

from __future__ import annotations

import socket
import struct

import h2.config
import h2.connection
import h2.events

# a gRPC message is framed as 1 byte (compressed?) + 4 bytes (length) + the message
FRAMED_1000_BYTES = b"\x00" + struct.pack(">I", 1000) + bytes(1000)


class RawConnection:
    """One HTTP/2 connection speaking just enough gRPC to open calls and read how they end."""

    def __init__(self, port: int, timeout_s: float = 60.0) -> None:
        self._authority = f"127.0.0.1:{port}"
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self._h2.initiate_connection()
        self._flush()
        self.statuses: dict[int, str] = {}  # stream id → grpc-status it ended with ("reset": RST_STREAM)

    def _flush(self) -> None:
        self._socket.sendall(self._h2.data_to_send())

    def _open(self, method: str, key: str | None) -> int:
        stream = self._h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method),
            (":authority", self._authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        if key is not None:
            headers.append(("authorization", f"Bearer {key}"))
        self._h2.send_headers(stream, headers)
        return stream

    def stalled(self, method: str, key: str | None = None, sent: int = 2) -> int:
        """A call that sends its headers and the first ``sent`` bytes of a 1,000-byte message, then nothing."""
        stream = self._open(method, key)
        self._h2.send_data(stream, FRAMED_1000_BYTES[:sent])
        self._flush()
        return stream

    def complete(self, method: str, message: bytes, key: str | None = None) -> int:
        """A call that sends its whole (serialized) request and ends its side."""
        stream = self._open(method, key)
        self._h2.send_data(stream, b"\x00" + struct.pack(">I", len(message)) + message, end_stream=True)
        self._flush()
        return stream

    def wait_ended(self, streams: list[int]) -> dict[int, str]:
        """Read until every one of ``streams`` ended; their grpc-status (socket timeout: ``TimeoutError``)."""
        while not all(stream in self.statuses for stream in streams):
            data = self._socket.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            for event in self._h2.receive_data(data):
                self._record(event)
            self._flush()
        return {stream: self.statuses[stream] for stream in streams}

    def _record(self, event: h2.events.Event) -> None:
        if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
            for name, value in event.headers:
                if name == "grpc-status":
                    self.statuses[event.stream_id] = str(value)
        elif isinstance(event, h2.events.StreamReset):
            self.statuses.setdefault(event.stream_id, "reset")
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

    def close(self) -> None:
        self._socket.close()
