"""The moto server, with DynamoDB's isolation guarantees restored.

`cargo xtask` starts moto through this file instead of `python -m moto.server`. Two properties of
moto 5's DynamoDB differ from DynamoDB's, and Throughline's store relies on both:

1. Requests are served by concurrent threads with no isolation, and `TransactWriteItems` applies
   its operations one by one. DynamoDB's transactions are serializable with every other write.
2. To undo a cancelled transaction, moto deep-copies every table it touches before it starts and
   puts that copy back when a condition fails. Any write that another thread committed in
   between is silently lost (an acknowledged interaction vanished this way, one run in five of
   `concurrent_first_messages_from_a_new_handle_make_one_customer`), and each transaction costs
   a copy of the whole table: with a thousand customers in it the emulator ran at 100 % CPU and
   grew past 10 GB.

3. (Speed, not correctness) moto's SQS works out every "now" with datetime arithmetic and
   reads every queue attribute, message counts included, for each message it receives; with a
   few thousand messages queued the local writer drained about ten a minute.
4. (Speed, not correctness) moto answers a Query on the table's key by listing and sorting
   every item of the table, then keeping the partition's: a Query cost O(table), a third of the
   emulator's time with a few thousand customers. DynamoDB reads the one partition; so does this.
   And for every request, under a lock all requests share, moto lists its own package directory
   (a `stat` per service) to route it: that list is made once.
5. (Speed) moto's server (werkzeug's development server) closes every connection and starts a
   thread per request; this file serves moto's application on waitress instead (`serve`).

So every DynamoDB request is served under one lock (requests to other services stay
concurrent), and a transaction checks all of its conditions first, then applies its operations,
undoing only the items it changed if applying one fails. Everything else is moto as installed.

Tests can make SQS fail the next entries of a queue's batches on its side (`_entry_faults`),
which moto never does by itself.

It also keeps a log of the IAM actions each caller's requests need (the caller is the access key
id of the request's SigV4 credential; tests give each function its own), served as JSON at
`GET /_throughline/actions`: the permissions test compares it with each function's policy in
infra/template.yaml, which moto, unlike AWS, does not enforce.
"""

import argparse
import copy
import io
import json
import os
import re
import sys
import threading
import time
from urllib.parse import parse_qs

import moto.sqs.models as sqs_models
from moto.core.utils import unix_time as _moto_unix_time

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
import moto.backends as moto_backends
import moto.server
import waitress
from moto.moto_server.werkzeug_app import create_backend_app

_DYNAMODB = threading.RLock()
_call_action = DynamoHandler.call_action


def _serialized_call_action(self):
    with _DYNAMODB:
        return _call_action(self)


def _key_of(table, op_type, op):
    if op_type != "Put":
        return op["Key"]
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _stored(table, key):
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _restore(table, key, before):
    hash_value, range_value = _stored(table, key)
    if before is None:
        table.delete_item(hash_value, range_value)
    elif range_value is not None:
        table.items[hash_value][range_value] = before
    else:
        table.items[hash_value] = before


def _transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    operations = []
    targets = set()
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        table = self.get_table(op["TableName"])
        key = _key_of(table, op_type, op)
        target = (op["TableName"], str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        operations.append((op_type, op, table, key))

    # Every condition against the state before the transaction; nothing written yet.
    errors = []
    for op_type, op, table, key in operations:
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition,
                    op.get("ExpressionAttributeNames"),
                    op.get("ExpressionAttributeValues"),
                )
                if not check.expr(current):
                    old = None
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
                    continue
            errors.append((None, None, None))
        except MockValidationException:
            raise
        except Exception as e:  # noqa: BLE001 - reported per operation, as moto does
            errors.append((type(e).__name__, str(e), None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # Apply, keeping a copy of each item before it changes, to undo this transaction alone.
    undo = []
    index = 0
    try:
        for index, (op_type, op, table, key) in enumerate(operations):
            name = op["TableName"]
            if op_type == "ConditionCheck":
                continue
            before = self.get_item(name, key)
            undo.append((table, key, copy.deepcopy(before) if before is not None else None))
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(name, op["Item"], expression_attribute_names=names, expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(name, key, expression_attribute_names=names, expression_attribute_values=values)
            else:
                self.update_item(
                    name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception as e:
        for table, key, before in reversed(undo):
            _restore(table, key, before)
        if isinstance(e, (MockValidationException, MultipleTransactionsException)):
            raise
        reasons = [(None, None, None)] * len(operations)
        reasons[index] = (type(e).__name__, str(e), None)
        raise TransactionCanceledException(reasons)


_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/")
_ACTIONS_LOCK = threading.Lock()
# The "caller" of requests whose actions could not be worked out.
UNREADABLE = "_unreadable"
_ACTIONS: dict = {}
# An API operation authorized by another IAM action.
_DYNAMODB_TRANSACTION_ITEMS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _s3_action(method, path, query, headers):
    parts = path.lstrip("/").split("/", 1)
    on_object = len(parts) == 2 and parts[1] != ""
    if not on_object:
        if method == "GET":
            return "s3:ListBucketVersions" if "versions" in query else "s3:ListBucket"
        if method == "POST" and "delete" in query:
            return "s3:DeleteObject"
        return {"PUT": "s3:CreateBucket", "HEAD": "s3:ListBucket", "DELETE": "s3:DeleteBucket"}.get(method, "s3:" + method)
    versioned = "versionId" in query
    if method in ("GET", "HEAD"):
        return "s3:GetObjectVersion" if versioned else "s3:GetObject"
    if method == "PUT":
        return "s3:PutObject"
    if method == "DELETE":
        return "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject"
    return "s3:" + method


def _actions_of(environ, body):
    """The IAM actions a request needs, as (caller, [action, ...]), or None if unsigned."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    match = _CREDENTIAL.search(authorization) or _CREDENTIAL.search(
        "Credential=" + query.get("X-Amz-Credential", [""])[0] + "/"
    )
    if not match:
        return None
    caller, service = match.group(1), match.group(2)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    operation = target.rsplit(".", 1)[-1] if target else None
    if operation is None and service != "s3":
        form = parse_qs(body.decode("utf-8", "replace"))
        operation = (form.get("Action") or query.get("Action") or ["unknown"])[0]
    if service == "s3":
        actions = [_s3_action(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"), query, environ)]
    elif service == "dynamodb" and operation == "TransactWriteItems":
        items = json.loads(body or b"{}").get("TransactItems", [])
        actions = ["dynamodb:TransactWriteItems"] + [
            "dynamodb:" + _DYNAMODB_TRANSACTION_ITEMS[kind] for item in items for kind in item
        ]
    elif service == "sqs":
        actions = ["sqs:" + _SQS_ACTIONS.get(operation, operation)]
    elif service == "ses" and environ.get("PATH_INFO", "").startswith("/v2/email/outbound-emails"):
        # SES v2 is REST: SendEmail (any content, raw included) needs ses:SendEmail.
        actions = ["ses:SendEmail"]
    else:
        actions = [service + ":" + operation]
    return caller, actions


# Faults on request (tests only): the next N entries sent to a queue in SendMessageBatch fail
# on SQS's side (`SenderFault: false`), as SQS answers when it has trouble with some entries of a
# batch, which moto never does. `POST /_throughline/sqs-entry-faults?queue=NAME&count=N` sets
# them; `GET` on the same path answers the ones not used yet, per queue.
_ENTRY_FAULTS: dict = {}
_ENTRY_FAULTS_LOCK = threading.Lock()
_send_message_batch = sqs_models.SQSBackend.send_message_batch


def _send_message_batch_with_faults(self, queue_name, entries):
    with _ENTRY_FAULTS_LOCK:
        failing = min(_ENTRY_FAULTS.get(queue_name, 0), len(entries))
        if failing:
            _ENTRY_FAULTS[queue_name] -= failing
    if not failing:
        return _send_message_batch(self, queue_name, entries)
    ids = list(entries)
    faults = [
        {"Id": entries[i]["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected by the test"}
        for i in ids[:failing]
    ]
    rest = {i: entries[i] for i in ids[failing:]}
    sent, failed = _send_message_batch(self, queue_name, rest) if rest else ([], [])
    return sent, faults + failed


sqs_models.SQSBackend.send_message_batch = _send_message_batch_with_faults


def _ses_sent(environ, start_response):
    """The raw mail SES (v1 or v2) sent, in every account and region, oldest first."""
    from moto.ses.models import RawMessage, ses_backends

    sent = []
    for account in ses_backends.values():
        for backend in account.values():
            for message in backend.sent_messages:
                if isinstance(message, RawMessage):
                    sent.append({"id": message.id, "source": message.source, "raw": message.raw_data})
    payload = json.dumps(sent).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _entry_faults(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        with _ENTRY_FAULTS_LOCK:
            _ENTRY_FAULTS[query["queue"][0]] = int(query["count"][0])
    with _ENTRY_FAULTS_LOCK:
        body = json.dumps(_ENTRY_FAULTS).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _RecordingApplication(moto.server.DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_throughline/sqs-entry-faults":
            return _entry_faults(environ, start_response)
        if environ.get("PATH_INFO") == "/_throughline/ses/sent":
            return _ses_sent(environ, start_response)
        if environ.get("PATH_INFO") == "/_throughline/actions":
            with _ACTIONS_LOCK:
                payload = json.dumps({caller: sorted(actions) for caller, actions in _ACTIONS.items()}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = b""
        if length:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        try:
            recorded = _actions_of(environ, body)
        except Exception as e:  # noqa: BLE001 - the log must never break a request...
            # ...nor lose one silently: the permissions test fails on this caller.
            recorded = (UNREADABLE, [f"{type(e).__name__} on {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"])
        if recorded:
            caller, actions = recorded
            with _ACTIONS_LOCK:
                _ACTIONS.setdefault(caller, set()).update(actions)
        return super().__call__(environ, start_response)


# SQS: moto computes every "now" through datetime arithmetic and scans the whole queue for
# each message it receives (the retention check reads all queue attributes, message counts
# included): with a few thousand messages queued, each request cost O(queue) slow steps and the
# local writer drained ~10 messages a minute. The same values, computed cheaply.
def _unix_time(dt=None):
    if dt is None:
        return time.time()
    return _moto_unix_time(dt)


def _unix_time_millis(dt=None):
    return _unix_time(dt) * 1000.0


def _is_message_valid_based_on_retention_period(self, queue_name, message):
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > time.time()


sqs_models.unix_time = _unix_time
sqs_models.unix_time_millis = _unix_time_millis
sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _is_message_valid_based_on_retention_period

# Query: the partition's items only (4. above). `Table.query` finds a base-table query's items
# through `all_items`; for the length of that call, under the DynamoDB lock, the table's
# `all_items` is the partition's. Queries on an index are moto's own.
_table_query = Table.query


def _query_one_partition(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name or hash_key is None or not self.range_key_attr:
        return _table_query(self, hash_key, *args, **kwargs)
    partition = list(self.items.get(hash_key, {}).values())
    self.all_items = lambda: sorted(partition, key=lambda item: item.range_key)
    try:
        return _table_query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


Table.query = _query_one_partition
_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _MOTO_MODULES
DynamoHandler.call_action = _serialized_call_action
DynamoDBBackend.transact_write_items = _transact_write_items

def _exit_at_end_of_stdin():
    sys.stdin.buffer.read()
    os._exit(0)


def serve(argv):
    """moto's application (with the changes above) on waitress: connections are kept alive and
    requests handled by a pool of threads, where werkzeug's development server, which moto's
    `main` runs, closes every connection and starts a thread for each request (under load a
    third of the emulator's time, and thousands of sockets in TIME-WAIT)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="exit when stdin closes (the parent holds its other end: when it exits, so does this)",
    )
    args = parser.parse_args(argv)
    if args.exit_with_stdin:
        threading.Thread(target=_exit_at_end_of_stdin, daemon=True).start()
    # moto writes its own port into URLs it returns (queue URLs).
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = _RecordingApplication(create_backend_app)
    waitress.serve(app, host=args.host, port=args.port, threads=16, ident=None, _quiet=True)


if __name__ == "__main__":
    serve(sys.argv[1:])
