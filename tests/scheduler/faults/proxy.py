"""A TCP proxy between scheduler processes and PostgreSQL that a test can cut and restore.

`partition()` is what a network partition does to a client: nothing more gets through in either
direction, yet neither end is told (no FIN, no RST), and new connections hang after the TCP
handshake. `heal()` is what the network coming back through a restarted load balancer does: every
connection that was cut dies for both ends, and new ones work again.

The proxy understands just enough of the PostgreSQL wire protocol to:

- refuse SSL and GSS encryption for the clients it serves (they fall back to plain text, as
  libpq's default sslmode=prefer does), so that it can see what they send;
- partition at a precise moment with `partition_after_claim()`: right after the server has run a
  scheduler's claim (`SELECT ... FROM scheduler_scheduledjob ... FOR UPDATE SKIP LOCKED`) that
  locked at least one due row, before the answer reaches the scheduler. That scheduler's
  transaction then holds the rows it locked, which is the fault of the issue ("a partition in the
  middle of a claim"), reproduced every time instead of by luck.

One limit of any proxy on the same host: the proxy's own kernel still acknowledges what a client
sends and answers its TCP keepalives, so libpq's keepalives and tcp_user_timeout cannot notice this
partition. Only a timeout in the application (the scheduler's watchdog) or on the server side can.
"""

import re
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass

# Startup-phase request codes (untyped messages: int32 length, int32 code).
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CLAIM_QUERY = re.compile(rb'FROM\s+"?scheduler_scheduledjob"?.*SKIP\s+LOCKED', re.DOTALL | re.IGNORECASE)
SELECT_TAG = re.compile(rb"SELECT (\d+)")


@dataclass(frozen=True)
class ClaimCut:
    """What partition_after_claim() caught: when, and the server-side port of the connection."""

    at: float  # time.monotonic()
    rows_locked: int
    backend_client_port: int  # pg_stat_activity.client_port of the cut claim's session


def _kill(sock: socket.socket) -> None:
    """Close so that the peer sees the connection die at once (a reset, no lingering)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Link(threading.Thread):
    """One proxied connection: client <-> proxy <-> server, relayed message by message."""

    def __init__(self, proxy: "PgProxy", client: socket.socket, upstream: socket.socket):
        super().__init__(name=f"pg-proxy-link-{client.fileno()}", daemon=True)
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.upstream_port = upstream.getsockname()[1]
        self.closed = False
        self._startup = True  # the client's next message is an untyped startup-phase one
        self._from_client_buf = bytearray()
        self._from_server_buf = bytearray()
        self._claim_sent = False  # a claim went to the server; its answer is being held
        self._held: list[bytes] = []

    def run(self):
        selector = selectors.DefaultSelector()
        try:
            selector.register(self.client, selectors.EVENT_READ)
            selector.register(self.upstream, selectors.EVENT_READ)
            while not self.closed:
                if not self.proxy.flowing.is_set():
                    # Partitioned: read nothing, send nothing; the bytes wait in the kernel's
                    # buffers and are never delivered (heal() closes this link).
                    self.proxy.flowing.wait(0.2)
                    continue
                for key, _ in selector.select(0.2):
                    if self.closed or not self.proxy.flowing.is_set():
                        break
                    data = key.fileobj.recv(65536)
                    if not data:
                        self.close()
                        return
                    if key.fileobj is self.client:
                        self._relay_client(data)
                    else:
                        self._relay_server(data)
        except (OSError, ValueError):
            self.close()
        finally:
            selector.close()

    def close(self):
        if not self.closed:
            self.closed = True
            _kill(self.client)
            _kill(self.upstream)

    def _send(self, sock, data: bytes) -> None:
        if data and self.proxy.flowing.is_set() and not self.closed:
            sock.sendall(data)

    def _relay_client(self, data: bytes) -> None:
        buf = self._from_client_buf
        buf += data
        out = bytearray()
        while True:
            if self._startup:  # int32 length (itself included), int32 code, ...
                if len(buf) < 8 or len(buf) < int.from_bytes(buf[:4], "big"):
                    break
                length = int.from_bytes(buf[:4], "big")
                message, code = bytes(buf[:length]), int.from_bytes(buf[4:8], "big")
                del buf[:length]
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    self.client.sendall(b"N")  # "not supported": the client goes on in plain text
                    continue
                self._startup = False  # the StartupMessage (or a CancelRequest)
                out += message
                continue
            if len(buf) < 5 or len(buf) < 1 + int.from_bytes(buf[1:5], "big"):
                break
            length = 1 + int.from_bytes(buf[1:5], "big")
            message = bytes(buf[:length])
            del buf[:length]
            out += message
            # Simple query ("Q") or extended protocol ("P"arse): both carry the SQL text.
            if message[:1] in (b"Q", b"P") and self.proxy.claim_trigger_armed and CLAIM_QUERY.search(message):
                self._claim_sent = True
        self._send(self.upstream, bytes(out))

    def _relay_server(self, data: bytes) -> None:
        buf = self._from_server_buf
        buf += data
        out = bytearray()
        while len(buf) >= 5 and len(buf) >= 1 + int.from_bytes(buf[1:5], "big"):
            length = 1 + int.from_bytes(buf[1:5], "big")
            message = bytes(buf[:length])
            del buf[:length]
            if not self._claim_sent:
                out += message
                continue
            # The answer to a claim: held until its outcome is known.
            self._held.append(message)
            kind = message[:1]
            if kind == b"C":  # CommandComplete, "SELECT n"
                match = SELECT_TAG.match(message[5:])
                rows = int(match[1]) if match else 0
                if rows and self.proxy._claim_cut(self, rows):
                    # Partitioned now: this answer and everything after it are never delivered.
                    self._held.clear()
                    buf.clear()
                    return
            if kind in (b"C", b"E"):  # done (or failed): pass it on and watch the next claim
                out += b"".join(self._held)
                self._held.clear()
                self._claim_sent = False
        self._send(self.client, bytes(out))


class PgProxy:
    """Listens on 127.0.0.1 (a free port) and relays to the PostgreSQL server at `upstream`."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.flowing = threading.Event()
        self.flowing.set()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._held: list[socket.socket] = []  # connections accepted while partitioned
        self._closed = False
        self.connections_accepted = 0
        self.claim_trigger_armed = False
        self.claim_cut: ClaimCut | None = None
        self._claim_cut_event = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="pg-proxy-accept", daemon=True)
        self._acceptor.start()

    # --- what tests call ---------------------------------------------------------------------------

    @property
    def partitioned(self) -> bool:
        return not self.flowing.is_set()

    def partition(self) -> None:
        """Stop forwarding, both ways, on every connection; hold new connections unanswered."""
        self.flowing.clear()

    def partition_after_claim(self) -> threading.Event:
        """Partition as soon as a claim has locked due rows on the server and before its answer is
        forwarded. Returns an event set when that happened (details in `claim_cut`)."""
        self.claim_cut = None
        self._claim_cut_event.clear()
        self.claim_trigger_armed = True
        return self._claim_cut_event

    def heal(self) -> None:
        """Kill every connection made through the proxy (both ends see it die), then forward again."""
        with self._lock:
            self.claim_trigger_armed = False
            links, self._links = self._links, set()
            held, self._held = self._held, []
        for link in links:
            link.close()
        for sock in held:
            _kill(sock)
        self.flowing.set()

    def backend_client_ports(self) -> set[int]:
        """The proxy's local ports towards the server: pg_stat_activity.client_port of its sessions."""
        with self._lock:
            return {link.upstream_port for link in self._links if not link.closed}

    def url(self, database_url: str) -> str:
        """The same postgres:// URL with the proxy's address instead of the server's."""
        return re.sub(r"@[^/@]+/", f"@127.0.0.1:{self.port}/", database_url, count=1)

    def close(self) -> None:
        self._closed = True
        self.heal()
        _kill(self._listener)
        self._acceptor.join(5)

    # --- inside ------------------------------------------------------------------------------------

    def _claim_cut(self, link: _Link, rows: int) -> bool:
        with self._lock:
            if not self.claim_trigger_armed:
                return False
            self.claim_trigger_armed = False
            self.flowing.clear()
            self.claim_cut = ClaimCut(time.monotonic(), rows, link.upstream_port)
        self._claim_cut_event.set()
        return True

    def _accept_loop(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closed:
                    return
                continue
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections_accepted += 1
                if not self.flowing.is_set():
                    self._held.append(client)  # accepted, never answered
                    continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _kill(client)
                continue
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                if not self.flowing.is_set():  # partitioned meanwhile
                    self._held.append(client)
                    _kill(upstream)
                    continue
                self._links.add(link)
            link.start()
