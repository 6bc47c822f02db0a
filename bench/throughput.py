"""Upload throughput through the OSS emulator on loopback: multipart against one PutObject.

Issue 14's target: a 1 GiB multipart upload reaches at least 80 % of the emulator's own
single-PUT throughput for the same bytes, measured side by side in one run. The emulator runs
in its own process (`python -m bench.throughput DATA_DIR` prints its port); the client is this
process: presigned V4 URLs from shared/sign/presign.py, `http.client`, a few parts in flight,
InitiateMultipartUpload and CompleteMultipartUpload by oss2 (the sign function's part). The bytes
are an 1 MiB random block repeated; both objects' CRC-64 (streamed for the PUT, combined from
the parts for the multipart object) must agree, or the figure is not reported.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import oss2

from bench.report import Section, Target
from shared.credentials import Credentials
from shared.settings import Secret
from shared.sign.presign import V4Presigner, presign_v4

MIB = 1024 * 1024
BLOCK = os.urandom(MIB)
BUCKET, REGION = "bench-bucket", "cn-hangzhou"
KEY_ID, SECRET = "bench-access-key-id", "bench-access-key-secret"
TARGET_RATIO = 0.80


@dataclass(frozen=True)
class Throughput:
    size: int
    part_size: int
    in_flight: int
    single_s: float
    multipart_s: float
    complete_s: float

    @property
    def parts(self) -> int:
        return -(-self.size // self.part_size)

    @property
    def ratio(self) -> float:
        """Multipart throughput as a share of single-PUT throughput (same bytes)."""
        return self.single_s / self.multipart_s


def body(start: int, length: int) -> Iterator[bytes]:
    """Bytes [start, start + length) of the repeated block; starts on a block boundary."""
    if start % len(BLOCK):
        raise ValueError("parts start on a block boundary")
    while length > 0:
        chunk = BLOCK if length >= len(BLOCK) else BLOCK[:length]
        length -= len(chunk)
        yield chunk


def put(url: str, start: int, length: int, connection: http.client.HTTPConnection) -> str:
    """PUT the byte range to a presigned URL; the answer's ETag."""
    parts = urlsplit(url)
    connection.request(
        "PUT",
        f"{parts.path}?{parts.query}",
        body=body(start, length),
        headers={"Content-Length": str(length)},
    )
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"PUT answered {response.status}")
    return response.headers["ETag"].strip('"')


def measure(size: int, part_size: int, in_flight: int) -> Throughput:
    credentials = Credentials(KEY_ID, Secret(SECRET))
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp, emulator(Path(tmp)) as url:
        host = urlsplit(url).netloc
        single_url = presign_v4(
            "PUT",
            endpoint=url,
            bucket=BUCKET,
            key="bench/single.bin",
            region=REGION,
            credentials=credentials,
            now=time.time(),
            expires=900,
        ).url
        connections: list[http.client.HTTPConnection] = []
        started = time.perf_counter()
        put(single_url, 0, size, opened(host, connections))
        single_s = time.perf_counter() - started

        sdk = oss2.Bucket(oss2.Auth(KEY_ID, SECRET), url, BUCKET)
        key = "bench/multipart.bin"
        started = time.perf_counter()
        upload_id = sdk.init_multipart_upload(key).upload_id
        presigner = V4Presigner(
            endpoint=url,
            bucket=BUCKET,
            region=REGION,
            credentials=credentials,
            now=time.time(),
            expires=900,
        )
        local = threading.local()

        def upload(number: int) -> oss2.models.PartInfo:
            if not hasattr(local, "connection"):
                local.connection = opened(host, connections)
            query = {"partNumber": str(number), "uploadId": upload_id}
            part_url = presigner.presign("PUT", key, query).url
            start = (number - 1) * part_size
            length = min(part_size, size - start)
            return oss2.models.PartInfo(number, put(part_url, start, length, local.connection))

        with ThreadPoolExecutor(in_flight) as pool:
            parts = list(pool.map(upload, range(1, -(-size // part_size) + 1)))
        completing = time.perf_counter()
        sdk.complete_multipart_upload(key, upload_id, parts)
        ended = time.perf_counter()
        for connection in connections:
            connection.close()
        single, multipart = sdk.head_object("bench/single.bin"), sdk.head_object(key)
        if (single.content_length, single.server_crc) != (size, multipart.server_crc):
            raise RuntimeError("the multipart object's bytes differ from the single PUT's")
    return Throughput(size, part_size, in_flight, single_s, ended - started, ended - completing)


def opened(host: str, connections: list[http.client.HTTPConnection]) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection(host, timeout=600)
    connections.append(connection)
    return connection


@contextmanager
def emulator(data_dir: Path) -> Iterator[str]:
    """The emulator in a child process on a free loopback port."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.throughput", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def serve(data_dir: str) -> None:
    from werkzeug.serving import make_server

    from local.oss_emulator import AccessKey, EmulatorConfig, OssEmulator

    config = EmulatorConfig(
        bucket=BUCKET,
        region=REGION,
        access_keys=(AccessKey(KEY_ID, SECRET),),
        data_dir=Path(data_dir),
        public_url="http://127.0.0.1",
    )
    server = make_server("127.0.0.1", 0, OssEmulator(config), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


def throughput_section(result: Throughput | str) -> tuple[Section, Target]:
    section = Section(
        "Upload throughput through the OSS emulator (loopback, emulator in its own process)",
        ["upload", "bytes", "seconds", "MiB/s"],
    )
    if isinstance(result, str):
        section.notes.append(result)
        return section, Target("multipart vs single PUT throughput", "≥ 80 %", "—", None)
    mib = result.size / MIB
    section.rows = [
        ["PutObject, one presigned V4 PUT", f"{mib:.0f} MiB", f"{result.single_s:.2f}",
         f"{mib / result.single_s:.0f}"],
        [f"multipart: Initiate, {result.parts} × {result.part_size // MIB} MiB presigned V4 parts "
         f"({result.in_flight} in flight), Complete", f"{mib:.0f} MiB",
         f"{result.multipart_s:.2f}", f"{mib / result.multipart_s:.0f}"],
    ]  # fmt: skip
    section.notes.append(
        f"CompleteMultipartUpload (the part files become the object; CRC-64 combined from the "
        f"parts'): "
        f"{result.complete_s:.2f} s. Both objects' CRC-64 agree. Ratio multipart / single PUT: "
        f"{result.ratio:.0%}."
    )
    target = Target(
        f"multipart vs single PUT throughput, {mib:.0f} MiB through the emulator",
        "≥ 80 %",
        f"{result.ratio:.0%}",
        result.ratio >= TARGET_RATIO,
        "Both paths stream through one Python process (MD5 and CRC-64 per byte, under one GIL, "
        "so parts in flight do not add CPU); the multipart path also pays a signed request, a "
        "spool file and a rename per part.",
    )
    return section, target


def attempt(*, quick: bool) -> Throughput | str:
    size, part_size = (16 * MIB, 4 * MIB) if quick else (1024 * MIB, 8 * MIB)
    try:
        return measure(size, part_size, in_flight=4)
    except Exception as exc:
        return f"not measured: {type(exc).__name__}: {str(exc)[:300]}"


if __name__ == "__main__":
    serve(sys.argv[1])
