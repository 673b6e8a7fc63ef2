"""``python -m service``: start the server with settings from the environment."""

from service.config import Settings
from service.server import serve

raise SystemExit(serve(Settings()))
