"""A small S3 server on loopback that keeps the embedded broker's objects as files, with the two
things Tansu's S3 storage relies on for correctness:

* conditional writes: `If-None-Match: *` (create only) and `If-Match: <etag>` (replace only that
  version) answer 412 when they do not hold. Tansu updates a partition's offsets this way; a server
  that ignores the precondition (s3rver 3.7.1) lets two producers get the same offsets, and the
  second batch overwrites the first (measured: tests/infra/test_infra_durable.py);
* atomic objects: each write goes to a temporary file that replaces the object in one rename, so a
  reader, or a kill -9 of this server, sees the old object or the new one, never half of one.

Files are not fsync'ed: a process crash loses nothing, a power cut can lose the last writes.
Only the calls the broker makes are served: PUT, GET (with Range), HEAD, DELETE of an object, and
ListObjectsV2 of a bucket. No authentication: it listens on loopback only (infra/objectstore.py).

    python -m infra.s3server --directory DIR --port PORT --bucket NAME
"""
from __future__ import annotations

import argparse
import email.utils
import hashlib
import os
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web

SUFFIX = "#o"  # object files end with it, so that a key can also be the prefix of other keys


class Store:
    def __init__(self, root: Path):
        self.root = root

    def path(self, bucket: str, key: str) -> Path:
        parts = [p for p in key.split("/")]
        if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in ("", ".", ".."):
            raise web.HTTPBadRequest(text="unsupported key")
        return self.root.joinpath(bucket, *parts[:-1], parts[-1] + SUFFIX)

    @staticmethod
    def etag(data: bytes) -> str:
        return '"' + hashlib.md5(data).hexdigest() + '"'

    def write(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _error(status: int, code: str, message: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


def _http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _iso(ts: float) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _keys(base: Path, prefix: str, one_level: bool) -> list[str]:
    """The keys under `prefix`, sorted; with `one_level`, the directories of the next level as
    "prefix.../" too (each stands for the keys below it). Only the prefix's own directory is read:
    the broker lists one partition's records on every fetch."""
    head, _, _tail = prefix.rpartition("/")
    start = base.joinpath(*head.split("/")) if head else base
    if not start.is_dir():
        return []
    lead = head + "/" if head else ""
    out = []
    if one_level:
        for entry in os.scandir(start):
            if entry.is_dir():
                out.append(lead + entry.name + "/")
            elif entry.name.endswith(SUFFIX):
                out.append(lead + entry.name[: -len(SUFFIX)])
    else:
        for dirpath, _dirs, files in os.walk(start):
            rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            out.extend(rel_dir + f[: -len(SUFFIX)] for f in files if f.endswith(SUFFIX))
    return sorted(k for k in out if k.startswith(prefix))


def make_app(root: Path, buckets: list[str]) -> web.Application:
    store = Store(root)
    for b in buckets:
        (root / b).mkdir(parents=True, exist_ok=True)

    async def list_buckets(_req: web.Request) -> web.Response:
        names = sorted(p.name for p in root.iterdir() if p.is_dir())
        items = "".join(f"<Bucket><Name>{escape(n)}</Name><CreationDate>{_iso(0)}</CreationDate></Bucket>" for n in names)
        return web.Response(text='<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets>'
                                 f"{items}</Buckets></ListAllMyBucketsResult>", content_type="application/xml")

    async def bucket(req: web.Request) -> web.Response:
        name = req.match_info["bucket"]
        base = root / name
        if not base.is_dir():
            return _error(404, "NoSuchBucket", f"no bucket {name}")
        if req.method == "HEAD":
            return web.Response()
        if req.method != "GET":
            return _error(501, "NotImplemented", f"{req.method} on a bucket")
        q = req.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        after = q.get("continuation-token") or q.get("start-after") or ""
        limit = int(q.get("max-keys", "1000"))
        keys = _keys(base, prefix, delimiter == "/")
        contents, prefixes = [], []
        truncated = False
        for key in keys:
            if key <= after:
                continue
            if key.endswith("/"):
                if key not in prefixes:
                    prefixes.append(key)
                continue
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    if common not in prefixes and common > after:
                        prefixes.append(common)
                    continue
            if len(contents) + len(prefixes) >= limit:
                truncated = True
                break
            st = store.path(name, key).stat()
            contents.append(f"<Contents><Key>{escape(key)}</Key><LastModified>{_iso(st.st_mtime)}</LastModified>"
                            f"<Size>{st.st_size}</Size><StorageClass>STANDARD</StorageClass></Contents>")
        token = ""
        if truncated and contents:
            last = keys[keys.index(key) - 1]
            token = f"<NextContinuationToken>{escape(last)}</NextContinuationToken>"
        common_xml = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes)
        body = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                f"<Name>{escape(name)}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents) + len(prefixes)}"
                f"</KeyCount><MaxKeys>{limit}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
                f"{token}{''.join(contents)}{common_xml}</ListBucketResult>")
        return web.Response(text=body, content_type="application/xml")

    async def obj(req: web.Request) -> web.Response:
        name, key = req.match_info["bucket"], req.match_info["key"]  # aiohttp decodes the path
        if not (root / name).is_dir():
            return _error(404, "NoSuchBucket", f"no bucket {name}")
        path = store.path(name, key)
        if req.method == "PUT":
            data = await req.read()
            # no await from here to the rename: the check and the write are one step for every other request
            current = path.read_bytes() if path.exists() else None
            if_none, if_match = req.headers.get("If-None-Match"), req.headers.get("If-Match")
            if if_none == "*" and current is not None:
                return _error(412, "PreconditionFailed", f"{key} exists")
            if if_match is not None and (current is None or if_match not in ("*", store.etag(current))):
                return _error(412 if current is not None else 404, "PreconditionFailed" if current is not None
                              else "NoSuchKey", f"{key} is not at {if_match}")
            store.write(path, data)
            return web.Response(headers={"ETag": store.etag(data)})
        if req.method == "DELETE":
            path.unlink(missing_ok=True)
            return web.Response(status=204)
        try:
            data = path.read_bytes()
            st = path.stat()
        except FileNotFoundError:
            return _error(404, "NoSuchKey", f"no object {key}")
        tag = store.etag(data)
        if req.headers.get("If-Match") not in (None, "*", tag):
            return _error(412, "PreconditionFailed", f"{key} is not at {req.headers['If-Match']}")
        if req.headers.get("If-None-Match") in ("*", tag):
            return web.Response(status=304, headers={"ETag": tag})
        headers = {"ETag": tag, "Last-Modified": _http_date(st.st_mtime), "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        status, body = 200, data
        rng = req.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first, _, last = rng[6:].partition("-")
            if first == "":
                start, end = max(0, len(data) - int(last)), len(data) - 1
            else:
                start, end = int(first), min(len(data) - 1, int(last)) if last else len(data) - 1
            if start >= len(data) or start > end:
                return _error(416, "InvalidRange", f"{rng} of {len(data)} bytes")
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        if req.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=status, headers=headers)
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("GET", "/", list_buckets)
    app.router.add_route("*", "/{bucket}", bucket)
    app.router.add_route("*", "/{bucket}/", bucket)
    app.router.add_route("*", "/{bucket}/{key:.+}", obj)
    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="paycenter's local S3 server for the embedded broker's storage")
    ap.add_argument("--directory", type=Path, required=True, help="where the objects are kept, one file each")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bucket", action="append", default=[], help="bucket to create when missing (repeatable)")
    args = ap.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    web.run_app(make_app(args.directory, args.bucket), host=args.address, port=args.port, print=None,
                access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
