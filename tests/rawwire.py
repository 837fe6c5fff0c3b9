"""A bare DEALER socket for the wire-level tests (validation, fuzz, load): it sends what a well-behaved
client never would and reads every reply, so a test can count them."""
import time

import msgpack
import zmq

from facesketch_client import protocol


class Raw:
    def __init__(self, address, context=None):
        self.sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        self.sock.connect(address)

    def send(self, *frames):
        self.sock.send_multipart(list(frames))

    def send_header(self, header, *frames):
        self.send(msgpack.packb({"v": protocol.PROTOCOL_VERSION, **header}), *frames)

    def recv(self, timeout=10.0):
        assert self.sock.poll(int(timeout * 1000)), "no reply from the backend"
        frames = self.sock.recv_multipart()
        return msgpack.unpackb(frames[0]), frames[1:]

    def recv_final(self, request_id, timeout=10.0):
        """The reply that ends request_id (result, error, hello, cancel), skipping accepted/progress."""
        deadline = time.monotonic() + timeout
        while True:
            header, frames = self.recv(max(0.01, deadline - time.monotonic()))
            if header.get("id") == request_id and header.get("kind") not in ("accepted", "progress"):
                return header, frames

    def close(self):
        self.sock.close(0)
