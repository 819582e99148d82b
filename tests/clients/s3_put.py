"""Uploads files to an S3-compatible server with boto3, creating the bucket first.

Usage: s3_put.py ENDPOINT BUCKET KEY=FILE [KEY=FILE ...]

Credentials come from the environment (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY), as for any boto3 client.
"""

import sys

import boto3
from botocore.exceptions import ClientError


def main() -> None:
    endpoint, bucket, *pairs = sys.argv[1:]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    for pair in pairs:
        key, path = pair.split("=", 1)
        with open(path, "rb") as body:
            client.put_object(Bucket=bucket, Key=key, Body=body.read())
        print(f"uploaded s3://{bucket}/{key}")


if __name__ == "__main__":
    main()
