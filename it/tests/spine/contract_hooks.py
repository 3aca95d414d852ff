"""Schemathesis hooks for the contract test (`contract.rs`).

A client sends a fresh `Idempotency-Key` with every distinct request, and the same one only to
retry that request: the server refuses a key reused for a different request (422), as the
header's contract says. Schemathesis generates keys from the schema without knowing this, so a
valid key it generated is replaced by a fresh one; invalid keys are sent as generated, for the
server to refuse.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() == "idempotency-key" and VALID_KEY.match(str(headers[name])):
            headers[name] = uuid.uuid4().hex
