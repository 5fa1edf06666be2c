"""Listing a prefix with many objects on S3: how long the catalogue scan of ``infer.input=s3://...`` takes.

    python -m benchmarks.s3_listing [--objects 5000] [--folders 50]

Starts a local S3 endpoint (moto in server mode, a dev dependency) unless ``AWS_ENDPOINT_URL``
names one, puts ``--objects`` small ``.wav`` objects under ``s3://<bucket>/music/`` spread over
``--folders`` folders, then times (a) the raw paginated listing of the prefix
(:func:`autotag.storage.relative_files`, ``ListObjectsV2`` 1,000 keys a page) and (b) the whole
scan of :func:`autotag.infer.inputs.track_rows` (listing, filtering, track ids). Memory is how much
the resident set of a child process grows while it lists the prefix and holds the names (the
endpoint runs in this process, so in-process counters would mix in its memory).
The times are moto's on this machine: moto builds every 1,000-key page from the whole bucket,
so they grow faster than linearly with the bucket; a real S3 answers a page in tens of ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from autotag import storage
from autotag.infer import inputs


def start_endpoint() -> object | None:
    """A moto S3 server on localhost when no endpoint is configured (returned, to stop it)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return None
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update({"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"})
    # moto builds each 1,000-key page from the whole bucket: on a loaded 2-core machine a page
    # can take longer than the AWS SDK's 3 s default, which would be retried as a stall.
    os.environ.setdefault("AUTOTAG_S3_REQUEST_TIMEOUT_S", "60")
    return server


def fill(bucket: str, objects: int, folders: int) -> float:
    """Put ``objects`` 44-byte objects under ``<bucket>/music/``; returns the seconds it took."""
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=bucket)
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: client.put_object(Bucket=bucket, Key=f"music/f{i % folders:03d}/t{i:06d}.wav",
                                                  Body=b"RIFF" + bytes(40)), range(objects)))
    return time.perf_counter() - start


LISTER = """
import sys
from autotag import storage
def rss():  # resident KiB now
    return int(open("/proc/self/statm").read().split()[1]) * 4
before = rss()
names = list(storage.relative_files(sys.argv[1]))  # held, as the scan holds them
print(len(names), rss() - before)
"""


def listing_rss_kib(prefix: str) -> tuple[int, int]:
    """``(objects, KiB)``: how much a child process's resident memory grows while it lists
    ``prefix`` and holds the names."""
    out = subprocess.run([sys.executable, "-c", LISTER, prefix], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout.split()
    return int(out[0]), int(out[1])


def timed(fn) -> tuple[float, object]:
    """``(seconds, result)`` of ``fn()``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--folders", type=int, default=50)
    args = parser.parse_args(argv)
    server = start_endpoint()
    try:
        bucket = f"listing-{uuid.uuid4().hex[:8]}"
        put_s = fill(bucket, args.objects, args.folders)
        prefix = f"s3://{bucket}/music/"
        list_s, names = timed(lambda: list(storage.relative_files(prefix)))
        scan_s, rows = timed(lambda: inputs.track_rows(prefix))
        listed, rss = listing_rss_kib(prefix)
        assert len(names) == rows.num_rows == listed == args.objects, (len(names), rows.num_rows, listed)
        pages = -(-args.objects // 1000)
        print(f"| objects | folders | pages | listing s | objects/s | scan s | RSS growth of the listing |\n"
              f"|---|---|---|---|---|---|---|\n"
              f"| {args.objects} | {args.folders} | {pages} | {list_s:.2f} | {args.objects / list_s:,.0f} | "
              f"{scan_s:.2f} | {rss / 1024:.1f} MiB ({rss * 1024 / args.objects:.0f} B per object) |")
        print(f"(putting the objects took {put_s:.1f} s; {os.getloadavg()[0]:.1f} load average)")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
