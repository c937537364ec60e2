"""The AWS emulator of the demo, the benchmark and the tests: moto's server, corrected in two
places where it behaves unlike AWS in ways that distort what the probes show.

1. An operation moto does not emulate (Cost Explorer anomaly monitors, AppConfig, Compute
   Optimizer, …) crashes its request handler, which answers an HTML "500 Internal Server
   Error" page. botocore retries 500s with exponential backoff, so every probe that meets a
   gap waited about a second for nothing, and its result quoted HTML. Here such a request
   answers 501 with a `NotImplemented` error in the shape the protocol expects: botocore does
   not retry a 501, and the result reads "the AWS emulator does not implement …".
2. moto finds the backend of every request by listing its own package folder and stat-ing
   each of its ~250 entries (`moto.backends.list_of_moto_modules`, moto 5.2): about 1.6 ms of
   CPU per request, a quarter of the emulator's time in a probe run. The folder does not
   change while the server runs, so it is listed once.
3. moto hands out credentials for any role ARN, even a role that does not exist; AWS answers
   AccessDenied. Here AssumeRole of a role its account does not hold is refused the same
   way, so one account's missing or misnamed probe role shows as it would in AWS.
4. An account created in the emulated organization (which holds, as in AWS, the
   OrganizationAccountAccessRole the demo sets it up through) gets its id from a fixed
   sequence (210000000001, …), not moto's random one, so that the demo deployment names the
   same accounts after a restart.

Never a production component: the app itself talks to AWS, or to whatever AWS_ENDPOINT_URL
names.

    python -m readiness.emulator -H 127.0.0.1 -p 5055
"""

import argparse
import functools
import io
import itertools
import json
import os
import re
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import moto
from gunicorn.app.base import BaseApplication
from moto import backends
from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.organizations import utils as organizations_utils

# Protocols whose errors are XML (query, ec2, rest-xml); the others read JSON.
XML_CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/xml", "text/xml")
XML_SERVICES = ("s3", "cloudfront", "route53")


class NotEmulated(Exception):
    """A request for a service moto has no backend for at all."""


def _backend_app(service):
    if service is None:
        raise NotEmulated("no emulated service answers this request")
    return create_backend_app(service)


def _operation(environ: dict) -> str:
    """The operation's name where the request carries it (JSON target, query Action), else
    the method and path of a REST call."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    action = parse_qs(environ.get("emulator.form", "")).get("Action")
    if action:
        return action[0]
    return f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"


def _keep_form(environ: dict) -> None:
    """Read a query-protocol body up front (its Action names the operation) and put it back
    for moto to read."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["emulator.form"] = body.decode("utf-8", "replace")


def _wants_xml(environ: dict) -> bool:
    if environ.get("HTTP_X_AMZ_TARGET"):
        return False
    if environ.get("CONTENT_TYPE", "").startswith(XML_CONTENT_TYPES):
        return True
    credential = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1]
    parts = credential.split(",", 1)[0].split("/")
    return len(parts) >= 4 and parts[3] in XML_SERVICES


def not_implemented(environ: dict, start_response) -> list[bytes]:
    message = f"The AWS emulator (moto {moto.__version__}) does not implement {_operation(environ)}"
    if _wants_xml(environ):
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>NotImplemented</Code><Message>{escape(message)}</Message></Error>"
            "<RequestId>emulator</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": "NotImplemented", "message": message}).encode()
        content_type = "application/x-amz-json-1.1"
    start_response(
        "501 Not Implemented",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", "NotImplemented"),
            ("x-amzn-RequestId", "emulator"),
        ],
    )
    return [body]


ROLE_ARN_RE = re.compile(
    r"^arn:aws[\w-]*:iam::(?P<account>\d{12}):role/(?:[^/]+/)*(?P<name>[^/]+)$"
)


def _refused_role(environ: dict) -> str:
    """The role ARN of an AssumeRole whose role does not exist in its account, else ''."""
    form = parse_qs(environ.get("emulator.form", ""))
    if form.get("Action") != ["AssumeRole"]:
        return ""
    arn = (form.get("RoleArn") or [""])[0]
    match = ROLE_ARN_RE.match(arn)
    if not match:
        return ""
    try:
        iam_backends[match["account"]]["aws"].get_role(match["name"])
    except Exception:  # moto's NotFoundException: no such role in that account
        return arn
    return ""


def access_denied(role_arn: str, start_response) -> list[bytes]:
    message = f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    body = (
        "<?xml version='1.0' encoding='UTF-8'?><ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
        "<RequestId>emulator</RequestId></ErrorResponse>"
    ).encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _numbered_accounts() -> None:
    """Correction 4: accounts of the emulated organization are numbered in creation order."""
    numbers = itertools.count(210000000001)
    organizations_utils.make_random_account_id = lambda: str(next(numbers))


class Emulator(DomainDispatcherApplication):
    def __call__(self, environ: dict, start_response):
        _keep_form(environ)
        refused = _refused_role(environ)
        if refused:
            return access_denied(refused, start_response)
        try:
            return super().__call__(environ, start_response)
        except (NotImplementedError, NotEmulated):
            return not_implemented(environ, start_response)


def app() -> Emulator:
    listed = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = functools.cache(lambda: listed)
    _numbered_accounts()
    emulator = Emulator(_backend_app)
    # moto's own server runs its apps in debug mode: Flask then lets a handler's exception
    # through to us instead of rendering its 500 page.
    emulator.debug = True
    return emulator


class Server(BaseApplication):
    """gunicorn, one process (moto keeps the account in memory) with threads.

    Not moto's own server: werkzeug's development server closes the connection after every
    response, so each AWS call paid a new TCP connection and a new server thread; gunicorn
    keeps connections alive as AWS's endpoints do.
    """

    def __init__(self, host: str, port: int, threads: int) -> None:
        self.options = {
            "bind": f"{host}:{port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            "keepalive": 30,
            "timeout": 120,
            "accesslog": None,
            "loglevel": "warning",
            # Its default socket (~/.gunicorn/gunicorn.ctl) is one per account, shared with
            # the web server and with every other emulator started by that account.
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5055)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args(argv)
    # moto builds some resource URLs (SQS queues, presigned links) from this, as its own
    # server arranges.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    Server(args.host, args.port, args.threads).run()


if __name__ == "__main__":
    main()
