"""The floor under an upload's time over HTTP: a bare ASGI app that reads the whole request
body and answers 201 with a JSON body the size of an upload's answer, served by uvicorn
with the protocol `harness serve` uses (:mod:`harness.server.protocol`). No framework, no
token check, no parsing, no scoring, no database: what is left of a sequential upload's
time here is the client, the loopback and uvicorn.

    python -m benchmarks.sink --port 8001
"""

from __future__ import annotations

import argparse
import json

# about the size of an upload's answer (a submission and `remaining_today`)
ANSWER = json.dumps({"id": 1, "team": "team-0001", "message": "benchmark upload",
                     "filename": "predictions.csv", "submitted_at": "2026-12-02T12:00:00Z",
                     "status": "scored", "error": None, "public_score": 0.91234,
                     "private_score": None, "selected": False, "final": False,
                     "late": False, "baseline": False, "remaining_today": None}).encode()


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status = 201 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(ANSWER)).encode())]})
    await send({"type": "http.response.body", "body": ANSWER})


def main(argv=None) -> None:
    import uvicorn

    from harness.server.protocol import guarded_protocol

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning",
                http=guarded_protocol(max_connections_per_ip=0))


if __name__ == "__main__":
    main()
