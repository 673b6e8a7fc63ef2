"""``python -m service``: start the server with settings from the environment."""

from service.config import Settings
from service.grpc.server import serve_workers

raise SystemExit(serve_workers(Settings()))
