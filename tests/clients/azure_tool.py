"""Creates containers on and lists blobs of a local Azurite Blob service.

Usage:
  azure_tool.py ENDPOINT create CONTAINER
  azure_tool.py ENDPOINT list CONTAINER PREFIX
  azure_tool.py ENDPOINT put-if-absent CONTAINER BLOB TEXT

ENDPOINT is the account URL in path style, such as
http://127.0.0.1:10000/devstoreaccount1. The account name is its last path
segment, and the account key comes from AZURE_STORAGE_ACCOUNT_KEY.

`create` succeeds when the container exists already. `list` prints one blob
name per line. `put-if-absent` sends Put Blob with `If-None-Match: *` and
prints `created`, or `exists` when the service rejected it with 409 or 412.

Requests are signed with Shared Key by hand, with the standard library only,
so the tests need no Azure SDK.
"""

import base64
import hashlib
import hmac
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from email.utils import formatdate

# Service version sent as x-ms-version; Azurite 3.37.0 accepts it.
API_VERSION = "2021-08-06"


def sign(method: str, url: str, headers: dict, account: str, key: str) -> str:
    """Returns the Shared Key Authorization header of a request."""
    parsed = urllib.parse.urlsplit(url)
    canonical_headers = "".join(
        f"{name}:{headers[name]}\n" for name in sorted(headers) if name.startswith("x-ms-")
    )
    resource = f"/{account}{parsed.path}"
    query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
    for name in sorted(query):
        resource += f"\n{name.lower()}:{','.join(sorted(query[name]))}"
    length = headers.get("Content-Length", "")
    if length == "0":
        length = ""
    string_to_sign = "\n".join(
        [
            method,
            "",  # Content-Encoding
            "",  # Content-Language
            length,
            "",  # Content-MD5
            headers.get("Content-Type", ""),
            "",  # Date, sent as x-ms-date instead
            "",  # If-Modified-Since
            "",  # If-Match
            headers.get("If-None-Match", ""),
            "",  # If-Unmodified-Since
            "",  # Range
            canonical_headers + resource,
        ]
    )
    digest = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode()}"


def request(method: str, url: str, account: str, key: str, body: bytes = b"", extra=None):
    """Sends one signed request; returns the status and the body."""
    headers = {
        "x-ms-date": formatdate(usegmt=True),
        "x-ms-version": API_VERSION,
        "Content-Length": str(len(body)),
    }
    if method == "PUT":
        # urllib would otherwise add a form Content-Type that is not signed.
        headers["Content-Type"] = "application/octet-stream"
    headers.update(extra or {})
    headers["Authorization"] = sign(method, url, headers, account, key)
    req = urllib.request.Request(url, data=body if method == "PUT" else None, method=method)
    for name, value in headers.items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main() -> None:
    endpoint, command, container, *rest = sys.argv[1:]
    endpoint = endpoint.rstrip("/")
    account = endpoint.rsplit("/", 1)[-1]
    key = os.environ["AZURE_STORAGE_ACCOUNT_KEY"]
    base = f"{endpoint}/{urllib.parse.quote(container)}"

    if command == "create":
        status, body = request("PUT", f"{base}?restype=container", account, key)
        if status not in (201, 409):
            sys.exit(f"creating container {container!r} failed with {status}: {body.decode()}")
    elif command == "list":
        (prefix,) = rest
        marker = ""
        while True:
            query = {"restype": "container", "comp": "list", "prefix": prefix}
            if marker:
                query["marker"] = marker
            url = f"{base}?{urllib.parse.urlencode(query)}"
            status, body = request("GET", url, account, key)
            if status != 200:
                sys.exit(f"listing {container!r} failed with {status}: {body.decode()}")
            root = ET.fromstring(body)
            for name in root.iter("Name"):
                print(name.text)
            marker = root.findtext("NextMarker") or ""
            if not marker:
                break
    elif command == "put-if-absent":
        blob, text = rest
        url = f"{base}/{urllib.parse.quote(blob)}"
        extra = {"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"}
        status, body = request("PUT", url, account, key, text.encode(), extra)
        if status == 201:
            print("created")
        elif status in (409, 412):
            print("exists")
        else:
            sys.exit(f"putting {blob!r} failed with {status}: {body.decode()}")
    else:
        sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
