"""Benchmark: the S3 file store's client, chosen by measurement. Writes then reads one file as a stream in
64 KiB pieces, as the batch processor and the exporter do, through boto3 (the store's client, in
store/s3_files.py) and through obstore, against the same S3-protocol server on loopback (moto's, as in
the tests: started here unless --endpoint names one), beside the floor of the same bytes through the local
file store. Prints MB/s and the peak of Python memory each took.

    .venv/bin/python bench/file_store.py --mib 64

obstore is not a dependency: `pip install obstore` to include it (it is skipped otherwise).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from opencdp.store.files import LocalFiles
from opencdp.store.s3_files import S3Files

PIECE = 64 * 1024
BUCKET = "bench"


def measure(name: str, mib: int, write: Callable[[bytes, int], None], read: Callable[[], int]) -> None:
    block = os.urandom(PIECE)
    pieces = mib * 1024 * 1024 // PIECE
    tracemalloc.start()
    started = time.perf_counter()
    write(block, pieces)
    wrote = time.perf_counter() - started
    _, write_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    total = read()
    readtime = time.perf_counter() - started
    _, read_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == pieces * PIECE, (name, total)
    print(f"{name:<10} write {mib / wrote:7.1f} MB/s (peak {write_peak / 2**20:5.1f} MiB)   "
          f"read {mib / readtime:7.1f} MB/s (peak {read_peak / 2**20:5.1f} MiB)")  # fmt: skip


def through_store(store: LocalFiles | S3Files) -> tuple[Callable[[bytes, int], None], Callable[[], int]]:
    key = f"bench/{uuid.uuid4().hex}"

    def write(block: bytes, pieces: int) -> None:
        with store.writer(key) as out:
            for _ in range(pieces):
                out.write(block)

    def read() -> int:
        total = 0
        with store.reader(key) as stream:
            while chunk := stream.read(PIECE):
                total += len(chunk)
        return total

    return write, read


def through_obstore(endpoint: str) -> tuple[Callable[[bytes, int], None], Callable[[], int]] | None:
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        return None
    store = S3Store(BUCKET, endpoint=endpoint, region="us-east-1", client_options={"allow_http": True},
                    access_key_id="bench", secret_access_key="bench")  # fmt: skip
    key = f"bench/{uuid.uuid4().hex}"

    def write(block: bytes, pieces: int) -> None:
        with obstore.open_writer(store, key) as out:
            for _ in range(pieces):
                out.write(block)

    def read() -> int:
        total = 0
        for chunk in obstore.get(store, key).stream(min_chunk_size=PIECE):
            total += len(chunk)
        return total

    return write, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--endpoint", help="an S3-compatible endpoint with a bucket named 'bench'")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    server = None
    endpoint = args.endpoint
    if endpoint is None:
        port = 45_000 + os.getpid() % 1000
        endpoint = f"http://127.0.0.1:{port}"
        moto = Path(sys.executable).with_name("moto_server")
        server = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
    try:
        boto = S3Files(f"s3://{BUCKET}", endpoint)
        if endpoint != args.endpoint:
            boto.client.create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as directory:
            measure("local", args.mib, *through_store(LocalFiles(Path(directory))))
        measure("boto3", args.mib, *through_store(boto))
        obstore = through_obstore(endpoint)
        if obstore is None:
            print("obstore    not installed (pip install obstore)")
        else:
            measure("obstore", args.mib, *obstore)
    finally:
        if server is not None:
            server.terminate()


if __name__ == "__main__":
    main()
