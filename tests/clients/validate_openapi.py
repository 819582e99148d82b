"""Fetch the server's OpenAPI document and validate it with openapi-spec-validator.

Usage: validate_openapi.py BASE_URL
Prints `valid OpenAPI <version> with <n> paths` and exits 0, or raises on
the first validation error.
"""

import json
import sys
import urllib.request

from openapi_spec_validator import validate


def main() -> None:
    base_url = sys.argv[1]
    with urllib.request.urlopen(f"{base_url}/api/v1/openapi.json", timeout=30) as response:
        document = json.load(response)
    validate(document)
    print(f"valid OpenAPI {document['openapi']} with {len(document['paths'])} paths")


if __name__ == "__main__":
    main()
