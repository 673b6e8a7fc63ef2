"""State and storage: result cache, Redis client, the snapshot this replica serves, what replicas
share through Redis, and the border feed poller. No gRPC."""
