"""Creates buckets on and lists objects of an S3-compatible server with boto3.

Usage:
  s3_tool.py ENDPOINT create BUCKET
  s3_tool.py ENDPOINT list BUCKET PREFIX
  s3_tool.py ENDPOINT put-if-absent BUCKET KEY TEXT

`list` prints one key per line. `put-if-absent` sends PutObject with
`If-None-Match: *` and prints `created`, or `exists` when the server
rejected it with 412 Precondition Failed.

Credentials come from the environment (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY), as for any boto3 client.
"""

import sys

import boto3
from botocore.exceptions import ClientError


def main() -> None:
    endpoint, command, bucket, *rest = sys.argv[1:]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    if command == "create":
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    elif command == "list":
        (prefix,) = rest
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                print(item["Key"])
    elif command == "put-if-absent":
        key, text = rest
        try:
            client.put_object(Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
            print("created")
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] != 412:
                raise
            print("exists")
    else:
        sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
