"""Exit 0 when the named service answers at the given URL, 1 (with the reason) when it does not."""

import socket
import sys
from urllib.parse import urlparse

DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "amqp": 5672}


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: service_check.py postgres|redis URL", file=sys.stderr)
        return 2
    kind, url = sys.argv[1], sys.argv[2]
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or DEFAULT_PORTS.get(kind, 0)
    try:
        with socket.create_connection((host, port), timeout=3):
            return 0
    except OSError as exc:
        print(f"{kind} at {host}:{port} is not reachable: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
