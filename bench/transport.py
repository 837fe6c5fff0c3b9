"""Transport benchmark: our service's echo engine versus a raw pyzmq multipart echo, side by side.

Both servers run as their own processes on loopback; the same client machine sends an RGBA layer
and waits for it to come back. Sizes alternate between the two servers in each round so that
machine noise hits both alike. Prints the median round trip of each and the ratio per size; the
last line is the worst ratio (target: <= 1.15).

    python -m facesketch.bench.transport [--repeats 30] [--sizes 512,2048,4096]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

from facesketch_client import Client, Image

RAW_ECHO = r"""
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.ROUTER)
s.setsockopt(zmq.LINGER, 0)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    msg = s.recv_multipart(copy=False)
    s.send_multipart(msg, copy=False)
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv, env=None) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = proc.stdout.readline().decode()
    if "ready" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {argv}")
    return proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--sizes", default="512,2048,4096")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    ours_addr, raw_addr = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    tmp = tempfile.mkdtemp(prefix="facesketch-bench-")
    env = dict(os.environ, FACESKETCH_SETTINGS=os.path.join(tmp, "settings.json"), XDG_STATE_HOME=tmp)
    ours_proc = start([sys.executable, "-m", "facesketch", "serve", "--bind", ours_addr, "--device", "cpu",
                       "--log-level", "warning"], env)
    raw_proc = start([sys.executable, "-c", RAW_ECHO, raw_addr])
    ours = Client(ours_addr, timeout_s=120)
    raw = zmq.Context.instance().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(raw_addr)

    def raw_echo(header: bytes, data: bytes) -> None:
        raw.send_multipart([header, data], copy=False)
        reply = raw.recv_multipart(copy=False)
        assert len(reply[1]) == len(data)

    def ours_echo(img: Image) -> None:
        out = ours.run("echo", {"image": img})["image"]
        assert len(out.data) == len(img.data)

    print(f"{'size':>10} {'raw pyzmq ms':>13} {'facesketch ms':>14} {'ratio':>7}")
    worst = 0.0
    try:
        for n in sizes:
            data = os.urandom(n * n * 4)
            img = Image(n, n, "RGBA8", data)
            header = b"\x80" * 64  # a header-sized frame for the raw echo
            for _ in range(2):  # warm up both paths (connections, allocations)
                raw_echo(header, data)
                ours_echo(img)
            t_raw, t_ours = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                raw_echo(header, data)
                t1 = time.perf_counter()
                ours_echo(img)
                t2 = time.perf_counter()
                t_raw.append(t1 - t0)
                t_ours.append(t2 - t1)
            r, o = statistics.median(t_raw), statistics.median(t_ours)
            ratio = o / r
            worst = max(worst, ratio)
            print(f"{n:>5}x{n:<4} {r * 1e3:13.2f} {o * 1e3:14.2f} {ratio:7.3f}", flush=True)
    finally:
        ours.close()
        raw.close(0)
        for p in (ours_proc, raw_proc):
            p.terminate()
            p.wait(10)
    print(f"worst ratio (facesketch / raw pyzmq): {worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
