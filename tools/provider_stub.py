"""One local stand-in for every provider send API Throughline calls: Twilio, Meta's Graph API
(WhatsApp Cloud, Messenger, Instagram), Telegram, X, Mailgun, and a company's chat backend;
and two reads, Twilio's Fetch Message (`GET …/Messages/{sid}.json`: a message it created, in its
final state `delivered`) and List Messages (`GET …/Messages.json?To=&From=`), which
reconciliation calls.

It checks what each provider checks -- credentials, then the request's shape -- and answers with
the provider's own response shapes, errors included. It knows the valid credentials from the same
SEND_CREDENTIALS document the sender reads (--credentials FILE). It records every request it
received; a test reads them back and scripts the next answers:

    GET  /_stub/requests            every request so far: provider, method, path, headers, body (text)
    POST /_stub/script              {"provider": "twilio", "status": 503, "body": {...},
                                     "headers": {...}, "delay_ms": 0, "times": 1}
                                    answers the provider's next `times` requests so (after they
                                    passed the credential check), or only waits `delay_ms` and
                                    then answers normally when `status` is absent; with "path",
                                    only requests whose path ends with it

Standard library only; started by tools/localstack (providers.rs) with the project's .venv Python.
"""

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import re
import sys
import threading
import time
import urllib.parse
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
LOCK = threading.Lock()
REQUESTS = []
SCRIPTS = []  # dicts as posted, with "times" counting down
MESSAGES = {}  # Twilio messages created, by sid (for Fetch Message)
COUNTER = itertools.count(1)
CREDENTIALS = {}


def hex_id(n):
    return hashlib.sha256(str(n).encode()).hexdigest()


class Answer(Exception):
    """Raised by a provider handler to answer at once."""

    def __init__(self, status, body, content_type="application/json", headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def basic_auth(headers):
    value = headers.get("authorization", "")
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:]).decode().partition(":")
    except Exception:
        return None
    return user, password


def bearer(headers):
    value = headers.get("authorization", "")
    return value[7:] if value.startswith("Bearer ") else None


def form(body):
    return urllib.parse.parse_qs(body.decode(), keep_blank_values=True)


def multipart(headers, body):
    content_type = headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields.setdefault(name, []).append(part.get_content().rstrip("\r\n") if part.get_content_maintype() == "text" else "")
    return fields


def json_body(body):
    try:
        return json.loads(body)
    except Exception:
        return None


# --- Twilio ---------------------------------------------------------------------------------

def twilio_error(status, code, message):
    raise Answer(status, {"code": code, "message": message,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})


def twilio(method, path, headers, body):
    account = CREDENTIALS.get("twilio") or {}
    m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages(?:/([A-Z]{2}[0-9a-f]{32}))?\.json", path)
    if not m or (method == "POST" and m.group(2) is not None):
        twilio_error(404, 20404, "The requested resource was not found")
    user = account.get("api_key_sid") or account.get("account_sid")
    if basic_auth(headers) != (user, account.get("auth_token")) or m.group(1) != account.get("account_sid"):
        twilio_error(401, 20003, "Authenticate")
    yield  # authenticated: a scripted answer may now apply
    if method == "GET" and m.group(2) is None:
        # List Messages, filtered by To and From as Twilio does, the newest first.
        query = urllib.parse.parse_qs(headers.get(":query", ""))
        want = {k: query[k][0] for k in ("To", "From") if k in query}
        with LOCK:
            found = [msg for msg in reversed(list(MESSAGES.values()))
                     if all(msg[k.lower()] == v for k, v in want.items())]
        size = int((query.get("PageSize") or ["50"])[0])
        raise Answer(200, {"messages": found[:size], "page": 0, "page_size": size, "first_page_uri": path,
                           "next_page_uri": None, "previous_page_uri": None, "uri": path, "start": 0, "end": len(found[:size])})
    if method == "GET":
        # Fetch Message: the one it created, in its final state (a script may say another).
        with LOCK:
            message = MESSAGES.get(m.group(2))
        if message is None:
            twilio_error(404, 20404, f"The requested resource /2010-04-01/Accounts/{m.group(1)}/Messages/{m.group(2)}.json was not found")
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        raise Answer(200, {**message, "status": "delivered", "date_sent": now, "date_updated": now})
    fields = form(body)
    to = (fields.get("To") or [""])[0]
    sender = (fields.get("From") or [""])[0]
    if not to:
        twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender and "MessagingServiceSid" not in fields:
        twilio_error(400, 21603, "A 'From' phone number is required.")
    if to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
        twilio_error(400, 63007, "Twilio could not find a Channel with the specified From address")
    if not E164.match(to.removeprefix("whatsapp:")):
        twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not any(k in fields for k in ("Body", "MediaUrl", "ContentSid")):
        twilio_error(400, 21602, "Message body is required.")
    if len((fields.get("Body") or [""])[0]) > 1600:
        twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    n = next(COUNTER)
    sid = ("MM" if "MediaUrl" in fields else "SM") + hex_id(n)[:32]
    message = {
        "account_sid": account["account_sid"], "api_version": "2010-04-01",
        "body": (fields.get("Body") or [""])[0], "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        "date_sent": None, "date_updated": None, "direction": "outbound-api", "error_code": None,
        "error_message": None, "from": sender, "messaging_service_sid": None,
        "num_media": str(len(fields.get("MediaUrl", []))), "num_segments": "1", "price": None,
        "price_unit": "USD", "sid": sid, "status": "queued", "subresource_uris": {"media": f"/2010-04-01/Accounts/{account['account_sid']}/Messages/{sid}/Media.json"},
        "to": to, "uri": f"/2010-04-01/Accounts/{account['account_sid']}/Messages/{sid}.json",
    }
    with LOCK:
        MESSAGES[sid] = message
    raise Answer(201, message)


# --- Meta Graph API -------------------------------------------------------------------------

def graph_error(status, code, message, subcode=None, kind="OAuthException"):
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "AStubTrace" + str(next(COUNTER))}
    if subcode is not None:
        error["error_subcode"] = subcode
    raise Answer(status, {"error": error})


def graph(method, path, headers, body):
    m = re.fullmatch(r"/v[0-9]+\.[0-9]+/([^/]+)/messages", path)
    if not m:
        graph_error(400, 2500, "Unknown path components")
    node = m.group(1)
    numbers = {v["phone_number_id"]: v["access_token"] for v in CREDENTIALS.get("whatsapp_cloud", {}).values()}
    pages = {k: v["access_token"] for k, v in CREDENTIALS.get("meta_pages", {}).items()}
    token = bearer(headers)
    if token is None:
        graph_error(400, 2500, "An active access token must be used to query information about the current user.")
    expected = numbers.get(node) or pages.get(node)
    if token != expected:
        graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
    yield
    message = json_body(body)
    if not isinstance(message, dict):
        graph_error(400, 100, "Invalid parameter", kind="OAuthException")
    if node in numbers:
        if message.get("messaging_product") != "whatsapp":
            graph_error(400, 100, "(#100) The parameter messaging_product is required.")
        to = str(message.get("to", ""))
        if not to.isdigit():
            graph_error(400, 100, "(#100) Invalid parameter")
        kind = message.get("type", "text")
        if kind not in message:
            graph_error(400, 100, f"(#100) The parameter {kind} is required.")
        n = next(COUNTER)
        raise Answer(200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                           "messages": [{"id": "wamid.Stub" + base64.b64encode(hex_id(n)[:24].encode()).decode()}]})
    recipient = (message.get("recipient") or {}).get("id")
    if not recipient:
        graph_error(400, 100, "(#100) param recipient must be non-empty.")
    if message.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        graph_error(400, 100, "(#100) param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
    if message.get("messaging_type") == "MESSAGE_TAG" and not message.get("tag"):
        graph_error(400, 100, "(#100) Tag is required for MESSAGE_TAG messaging type")
    content = message.get("message") or {}
    if ("text" in content) == ("attachment" in content):
        graph_error(400, 100, "(#100) Must send either message text or an attachment")
    n = next(COUNTER)
    raise Answer(200, {"recipient_id": recipient, "message_id": "m_Stub" + hex_id(n)[:40]})


# --- Telegram -------------------------------------------------------------------------------

def telegram_error(code, description):
    raise Answer(code, {"ok": False, "error_code": code, "description": description})


def telegram(method, path, headers, body):
    m = re.fullmatch(r"/bot([^/]+)/(sendMessage|sendPhoto|sendDocument)", path)
    bots = {v["token"]: k for k, v in CREDENTIALS.get("telegram", {}).items()}
    if not m or m.group(1) not in bots:
        telegram_error(401 if m else 404, "Unauthorized" if m else "Not Found")
    yield
    method = m.group(2)
    message = json_body(body)
    if not isinstance(message, dict) or not message.get("chat_id"):
        telegram_error(400, "Bad Request: chat_id is empty")
    field = {"sendMessage": "text", "sendPhoto": "photo", "sendDocument": "document"}[method]
    if not message.get(field):
        telegram_error(400, "Bad Request: message text is empty" if field == "text" else f"Bad Request: there is no {field} in the request")
    n = next(COUNTER)
    chat = int(message["chat_id"])
    result = {"message_id": 1000 + n, "from": {"id": 7000000001, "is_bot": True, "first_name": "Support", "username": bots[m.group(1)]},
              "chat": {"id": chat, "type": "private"}, "date": int(time.time())}
    if field == "text":
        result["text"] = message["text"]
    else:
        result[field] = [{"file_id": "stub-" + str(n)}]
    raise Answer(200, {"ok": True, "result": result})


# --- X --------------------------------------------------------------------------------------

def x_problem(status, title, detail):
    raise Answer(status, {"title": title, "type": "about:blank", "status": status, "detail": detail},
                 content_type="application/problem+json")


def x(method, path, headers, body):
    m = re.fullmatch(r"/2/dm_conversations/with/([0-9]+)/messages", path)
    if not m:
        x_problem(404, "Not Found Error", "The requested resource was not found")
    accounts = {v["access_token"]: k for k, v in CREDENTIALS.get("x", {}).items()}
    token = bearer(headers)
    if token not in accounts:
        x_problem(401, "Unauthorized", "Unauthorized")
    yield
    message = json_body(body)
    if not isinstance(message, dict) or not (message.get("text") or message.get("attachments")):
        raise Answer(400, {"errors": [{"parameters": {"text": []}, "message": "Either text or attachments must be provided"}],
                           "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                           "type": "https://api.twitter.com/2/problems/invalid-request"})
    n = next(COUNTER)
    # X's ids are snowflakes: the time (ms since X's epoch) above the lowest 22 bits.
    snowflake = ((int(time.time() * 1000) - 1288834974657) << 22) + n % (1 << 22)
    raise Answer(201, {"data": {"dm_conversation_id": f"{accounts[token]}-{m.group(1)}", "dm_event_id": str(snowflake)}})


# --- Mailgun --------------------------------------------------------------------------------

def mailgun(method, path, headers, body):
    m = re.fullmatch(r"/v3/([^/]+)/messages", path)
    account = CREDENTIALS.get("mailgun") or {}
    if basic_auth(headers) != ("api", account.get("api_key")):
        raise Answer(401, b"Forbidden", content_type="text/plain")
    if not m or m.group(1) not in account.get("domains", []):
        raise Answer(404, {"message": f"Domain not found: {m.group(1) if m else ''}"})
    yield
    fields = multipart(headers, body)
    if fields is None:
        raise Answer(400, {"message": "Invalid content type: expected multipart/form-data"})
    for name in ("from", "to"):
        if not fields.get(name):
            raise Answer(400, {"message": f"{name} parameter is missing"})
    if not (fields.get("text") or fields.get("html")):
        raise Answer(400, {"message": "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified"})
    n = next(COUNTER)
    raise Answer(200, {"id": f"<{time.strftime('%Y%m%d%H%M%S')}.{n}.{hex_id(n)[:16].upper()}@{m.group(1)}>", "message": "Queued. Thank you."})


# --- A company's chat backend ---------------------------------------------------------------

def chat(method, path, headers, body):
    sites = CREDENTIALS.get("web_chat", {})
    site = headers.get("x-throughline-site", "")
    config = sites.get(site)
    timestamp = headers.get("x-throughline-timestamp", "")
    if not config or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        raise Answer(401, {"error": "unknown site or stale timestamp"})
    expected = base64.b64encode(hmac.new(config["secret"].encode(), timestamp.encode() + b"." + body, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, headers.get("x-throughline-signature", "")):
        raise Answer(401, {"error": "bad signature"})
    yield
    message = json_body(body)
    if not isinstance(message, dict) or message.get("type") != "agent_message" or not message.get("to"):
        raise Answer(400, {"error": "not an agent message"})
    raise Answer(202, {})


PROVIDERS = {"twilio": twilio, "graph": graph, "telegram": telegram, "x": x, "mailgun": mailgun, "chat": chat}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json", headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_stub/requests":
            with LOCK:
                self.send(200, REQUESTS)
        else:
            self.serve("GET")

    def do_POST(self):
        self.serve("POST")

    def serve(self, method):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if method == "POST" and self.path == "/_stub/script":
            with LOCK:
                SCRIPTS.append(json.loads(body))
            return self.send(204, b"")
        provider, _, rest = self.path.lstrip("/").partition("/")
        handler = PROVIDERS.get(provider)
        # Of the providers' reads, only Twilio's Fetch Message is stubbed.
        if handler is None or (method == "GET" and provider != "twilio"):
            return self.send(404, {"error": f"no {method} for provider {provider}"})
        path, _, query = ("/" + rest).partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        headers[":query"] = query
        with LOCK:
            REQUESTS.append({"provider": provider, "method": method, "path": path, "headers": headers,
                             "body": body.decode("utf-8", "replace")})
        steps = handler(method, path, headers, body)
        try:
            next(steps)  # the credential check; raises Answer when it fails
            script = None
            with LOCK:
                for s in SCRIPTS:
                    if (s.get("provider") == provider and s.get("times", 1) > 0
                            and path.endswith(s.get("path", ""))):
                        s["times"] = s.get("times", 1) - 1
                        script = dict(s)
                        break
            if script and script.get("delay_ms"):
                time.sleep(script["delay_ms"] / 1000)
            if script and "status" in script:
                raw = script.get("body", {})
                content_type = "application/json" if not isinstance(raw, str) else "text/plain"
                return self.send(script["status"], raw.encode() if isinstance(raw, str) else raw,
                                 content_type, script.get("headers"))
            next(steps)
            self.send(500, {"error": "the stub answered nothing"})
        except Answer as answer:
            self.send(answer.status, answer.body, answer.content_type, answer.headers)
        except StopIteration:
            self.send(500, {"error": "the stub answered nothing"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--credentials", required=True, help="a SEND_CREDENTIALS document (JSON file)")
    parser.add_argument("--exit-with-stdin", action="store_true")
    args = parser.parse_args()
    with open(args.credentials) as f:
        CREDENTIALS.update(json.load(f))
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    if args.exit_with_stdin:
        def watch():
            sys.stdin.read()
            server.shutdown()
        threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
