"""Sends access-log lines to apitrail's Elasticsearch bulk API with opensearch-py.

Usage: es_bulk_client.py BASE_URL TOKEN_NAME TOKEN_SECRET

Logs in with HTTP Basic (token name and secret), as shippers do, sends 50
lines through `helpers.bulk` in requests of 20, and prints the helper's
result as JSON: {"ok": <stored count>, "errors": [<failed items>]}.
"""

import json
import sys
from urllib.parse import urlparse

from opensearchpy import OpenSearch, helpers

LINE = (
    '10.0.0.{n} - - [10/Oct/2024:13:55:36 +0000] '
    '"GET /b/opensearch/{n} HTTP/1.1" 200 12 "-" "python"'
)


def main() -> None:
    url = urlparse(sys.argv[1])
    client = OpenSearch(
        hosts=[{"host": url.hostname, "port": url.port, "url_prefix": "/api/v1/es"}],
        http_auth=(sys.argv[2], sys.argv[3]),
        use_ssl=False,
    )
    actions = [
        {"_op_type": "create", "_index": "clf", "_source": {"message": LINE.format(n=n)}}
        for n in range(50)
    ]
    ok, errors = helpers.bulk(client, actions, chunk_size=20, raise_on_error=False)
    print(json.dumps({"ok": ok, "errors": errors}))


if __name__ == "__main__":
    main()
