"""Listing a prefix with many objects on S3: how long the catalogue scan of ``infer.input=s3://...`` takes.

    python -m benchmarks.s3_listing [--objects 5000] [--folders 50]

Starts a local S3 endpoint (moto in server mode, a dev dependency) unless ``AWS_ENDPOINT_URL``
names one, puts ``--objects`` small ``.wav`` objects under ``s3://<bucket>/music/`` spread over
``--folders`` folders, then times (a) the raw paginated listing of the prefix
(:func:`autotag.storage.relative_files`, ``ListObjectsV2`` 1,000 keys a page) and (b) the whole
scan of :func:`autotag.infer.inputs.track_rows` (listing, filtering, track ids), with the peak
Python memory of each (tracemalloc) and the requests the endpoint served. The numbers are for
this endpoint on this machine: a real S3 answers each page in tens of milliseconds more.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
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


def timed(fn) -> tuple[float, int, object]:
    """``(seconds, peak traced bytes, result)`` of ``fn()``."""
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, result


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
        list_s, list_peak, names = timed(lambda: list(storage.relative_files(prefix)))
        scan_s, scan_peak, rows = timed(lambda: inputs.track_rows(prefix))
        assert len(names) == rows.num_rows == args.objects, (len(names), rows.num_rows)
        pages = -(-args.objects // 1000)
        print(f"| objects | folders | pages | listing s | objects/s | listing peak MiB | scan s | scan peak MiB |\n"
              f"|---|---|---|---|---|---|---|---|\n"
              f"| {args.objects} | {args.folders} | {pages} | {list_s:.2f} | {args.objects / list_s:,.0f} | "
              f"{list_peak / 2**20:.1f} | {scan_s:.2f} | {scan_peak / 2**20:.1f} |")
        print(f"(putting the objects took {put_s:.1f} s; a 100k-object prefix at this rate: "
              f"{100_000 / args.objects * scan_s:.0f} s to scan, ~{100_000 / args.objects * scan_peak / 2**20:.0f} "
              "MiB peak)")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
