"""Validates recorded SS 12000 requests and answers against the official specification.

Usage: validate.py SPEC.yaml RECORDS.jsonl

Each line of RECORDS.jsonl is one answer: {"method", "path", "query", "status", "body",
"request"} (the request's JSON body, empty for a GET),
`path` below the specification's server (for example /v2.0/persons). Every answer is
checked with openapi-core (response body, types, formats and enums), and every request
that was answered with success (its parameters, their types and enums). Prints "checked N" and exits 0 when all follow the specification; otherwise
prints one line per violation (at most 20) and exits 1.
"""

import json
import sys
from urllib.parse import parse_qsl

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.datastructures import ImmutableMultiDict

# The specification's own server URL: the recorded paths are matched below it.
SERVER = "http://some.server.se"


def main() -> int:
    spec_path, records_path = sys.argv[1], sys.argv[2]
    api = OpenAPI.from_file_path(spec_path)
    problems = []
    checked = 0
    with open(records_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            args = ImmutableMultiDict(parse_qsl(r["query"], keep_blank_values=True))
            # The answer came with a bearer token (or was a 401); the header itself is
            # not recorded, so a stand-in satisfies the document's security scheme.
            body = r.get("request") or None
            req = MockRequest(
                SERVER,
                r["method"],
                r["path"],
                args=args,
                headers={"Authorization": "Bearer recorded"},
                data=body.encode("utf-8") if body else None,
                content_type="application/json",
            )
            resp = MockResponse(
                r["body"].encode("utf-8"),
                status_code=r["status"],
                content_type="application/json",
            )
            checked += 1
            try:
                # A request the server answered with success must itself have followed
                # the document (its parameters, their types and enums).
                if r["status"] < 400:
                    api.validate_request(req)
                api.validate_response(req, resp)
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                cause = e.__cause__ or e
                detail = getattr(cause, "schema_errors", None)
                text = "; ".join(str(x.message) for x in detail) if detail else str(cause)
                problems.append(
                    f"answer {n}: {r['method'].upper()} {r['path']}?{r['query']} "
                    f"HTTP {r['status']}: {type(e).__name__}: {text[:400]}"
                )
    if problems:
        for p in problems[:20]:
            print(p)
        print(f"{len(problems)} of {checked} answers break the specification")
        return 1
    print(f"checked {checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
