"""Load measurement for the local stack: one Meta delivery of N Messenger messages from N new
customers, signed with the sample events' test app secret, POSTed to a running
`cargo xtask demo --serve` twice (Meta's retry), then the time until the writer has drained the
interactions queue. Run with the project's virtualenv (it has boto3, from moto):

    .venv/bin/python tools/meta_load.py <Meta webhook URL> <moto endpoint> <queue URL> [N]

The demo prints all three URLs when it starts. Prints one line: messages, seconds to drain.
"""

import hashlib
import hmac
import json
import sys
import time
import urllib.request

import boto3

APP_SECRET = b"throughline-test-meta-app-secret"  # xtask::stack::TEST_META_APP_SECRET
PAGE = "1060000000000001"


def delivery(count: int, run: str) -> bytes:
    now = int(time.time() * 1000)
    messaging = [
        {
            "sender": {"id": f"70{n:014d}"},
            "recipient": {"id": PAGE},
            "timestamp": now + n,
            "message": {"mid": f"m_load_{run}_{n}", "text": f"load message {n}"},
        }
        for n in range(count)
    ]
    body = {"object": "page", "entry": [{"id": PAGE, "time": now, "messaging": messaging}]}
    return json.dumps(body, separators=(",", ":")).encode()


def post(url: str, body: bytes) -> int:
    signature = "sha256=" + hmac.new(APP_SECRET, body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json", "x-hub-signature-256": signature}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status


def main() -> None:
    url, endpoint, queue_url = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    body = delivery(count, str(int(time.time())))
    started = time.monotonic()
    for _ in range(2):
        status = post(url, body)
        if status != 200:
            sys.exit(f"the webhook answered {status}")
    while True:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0:
            break
        # Not more often: moto counts the queue's messages one by one for each answer.
        time.sleep(1)
    print(f"{2 * count} messages ({count} customers, sent twice): drained in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
