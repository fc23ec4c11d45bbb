#!/usr/bin/env python3
"""A throw-away SMTP server for Fiktiv's tests (aiosmtpd, from PyPI).

Listens on 127.0.0.1:PORT. STARTTLS with the given certificate is required before
MAIL, and AUTH (PLAIN, LOGIN) with the one given user is required too, only over TLS.
Every message accepted is written to OUTDIR as NNNN.eml (written to a temporary name,
then renamed), preceded by headers the test reads:

    X-Test-Envelope-From: <address>
    X-Test-Envelope-To: <address>        (one per recipient)
    X-Test-Tls: yes|no                   (whether the session was under TLS)
    X-Test-Auth: <login>|none

Started by fiktiv_tests::SmtpServer; stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import itertools
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    def __init__(self, outdir):
        self.outdir = outdir
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        tls = "yes" if session.ssl is not None else "no"
        login = "none"
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        head = [f"X-Test-Envelope-From: {envelope.mail_from}"]
        head += [f"X-Test-Envelope-To: {r}" for r in envelope.rcpt_tos]
        head += [f"X-Test-Tls: {tls}", f"X-Test-Auth: {login}"]
        body = envelope.original_content or envelope.content
        if isinstance(body, str):
            body = body.encode("utf-8")
        tmp = os.path.join(self.outdir, f".{n:04}.tmp")
        with open(tmp, "wb") as f:
            f.write(("\r\n".join(head) + "\r\n").encode("utf-8"))
            f.write(body)
        os.rename(tmp, os.path.join(self.outdir, f"{n:04}.eml"))
        print(f"smtp-server: message {n} stored", flush=True)
        return "250 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--outdir", required=True)
    args = ap.parse_args()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)

    user = args.user.encode("utf-8")
    password = args.password.encode("utf-8")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user
            and auth_data.password == password
        )
        # handled=False: on a failure aiosmtpd answers 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    store = Store(args.outdir)

    def factory():
        return SMTP(
            store,
            hostname="localhost",
            tls_context=ctx,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=True,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        server = loop.run_until_complete(
            loop.create_server(factory, host="127.0.0.1", port=args.port)
        )
    except OSError as e:
        print(f"smtp-server: cannot listen on 127.0.0.1:{args.port}: {e}", flush=True)
        sys.exit(3)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print(f"smtp-server: listening on 127.0.0.1:{args.port}", flush=True)
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())


if __name__ == "__main__":
    main()
