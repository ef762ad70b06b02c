"""Hostile uploads through a live `harness serve` (SQLite and PostgreSQL).

Every file of the scorer's corpus (tests/hostile/) and a batch of generated attacks
(10 MB lines, a 10^5-column header, bodies over max_upload_mb, broken multipart, huge or
non-UTF-8 messages, filenames with path tricks or NUL bytes, hypothesis-made bodies) is
sent to a real server. Each gets a 4xx with a one-line ``{"detail"}``; none is counted
against the daily limit; the database only gains the ``status: "error"`` rows the service
records for refused files (no scored row, the boards, the selections and the audit log
unchanged, no file written); the server's peak memory grows by less than a small multiple
of the upload cap, and it keeps serving.

A team gets at most ``[rules] refusal_limit`` refused files per REFUSAL_WINDOW (then 429),
so the batch is spread over several attacker teams, each kept under that limit; one more
test floods a single team past it. Hostile requests that are not uploads of bad files (methods,
headers, encodings, raw protocol) are in tests/test_hostile_requests.py.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.home import load_prepared
from harness.service import REFUSAL_WINDOW, STORED_REFUSALS, Harness
from harness.spec import set_rules
from test_hostile_scorer import MEMORY_PER_BYTE, hundred_thousand_columns, million_wrong_ids

CORPUS = sorted((Path(__file__).parent / "hostile").glob("*.csv"))
SLUG = "digits"
CAP_MB = 12                 # above the 10 MB single line, so that one reaches the scorer
CAP = CAP_MB * 2**20
MEMORY_FACTOR = 4           # peak-RSS growth allowed during the batch, in upload caps
RANDOM_UPLOADS = 12         # hypothesis-made uploads in the batch
REFUSAL_LIMIT = 20          # [rules] refusal_limit: refused files per team and window
PER_TEAM = REFUSAL_LIMIT - 1        # requests each attacker team sends: never a 429
UPLOAD_URL = f"/api/competitions/{SLUG}/submissions"
# what an answer must never show: a stack trace or the server's libraries
INTERNALS = ("traceback", "site-packages", 'file "', "pyarrow", "sqlalchemy", "psycopg")


class Site:
    """A live server on a home of its own, the teacher's Harness on it, and two teams."""

    def __init__(self, home: Path, harness: Harness, server):
        self.home, self.h, self.server = home, harness, server
        self.attacker, self.attacker_token = harness.add_team("mallory")
        self.bystander, self.bystander_token = harness.add_team("bob")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.attacker_token}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=120)

    def peak_rss(self, field: str = "VmHWM") -> int:
        """The server process's peak resident memory (or another ``field``), in bytes."""
        status = Path(f"/proc/{self.server.process.pid}/status").read_text()
        line = next(li for li in status.splitlines() if li.startswith(field + ":"))
        return int(line.split()[1]) * 1024

    def reset_peak(self) -> int:
        """Reset the server's peak-memory mark where Linux allows it; the mark to grow from.

        Without the reset the old peak stays, so growth from it is an underestimate: a
        check can then miss a problem, never invent one.
        """
        try:
            Path(f"/proc/{self.server.process.pid}/clear_refs").write_text("5")
        except OSError:
            return self.peak_rss()
        return self.peak_rss("VmRSS")


class Attackers:
    """Attacker teams taking turns: each sends PER_TEAM requests, then the next one does.

    All of them are created up front (a new team is an audit row, and the audit log must
    not change during the batch); "mallory" goes first.
    """

    def __init__(self, site: Site, requests: int):
        count = -(-requests // PER_TEAM)
        self.sent = 0
        self.tokens = {site.attacker["name"]: site.attacker_token}
        for k in range(1, count):
            team, token = site.h.add_team(f"mallory-{k}")
            self.tokens[team["name"]] = token
        self._clients = {name: site.client(token) for name, token in self.tokens.items()}

    def post(self, url: str, **request) -> httpx.Response:
        """``httpx.Client.post`` as the team whose turn it is."""
        turn = self.sent // PER_TEAM
        assert turn < len(self._clients), f"more than the {self.sent} requests planned"
        self.sent += 1
        return list(self._clients.values())[turn].post(url, **request)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture(scope="module")
def site(live_backend, start_server, make_predictions):
    home, database_url = live_backend
    toml = home / "competitions" / SLUG / "competition.toml"
    toml.write_text(set_rules(toml.read_text(), max_upload_mb=CAP_MB, daily_limit=5,
                              refusal_limit=REFUSAL_LIMIT))
    rules = load_prepared(home, SLUG).spec.rules
    assert (rules.max_upload_bytes, rules.refusal_limit) == (CAP, REFUSAL_LIMIT)
    harness = Harness(home, database_url)
    s = Site(home, harness, start_server(home, database_url))
    # something on the boards to keep unchanged: a team's entry and a baseline
    with s.client(s.bystander_token) as c:
        r = c.post(f"/api/competitions/{SLUG}/submissions",
                   files={"file": ("b.csv", make_predictions(home, SLUG, 0.9, 0.8, seed=1))})
        assert r.status_code == 201, r.text
    harness.add_baseline(SLUG, "baseline", make_predictions(home, SLUG, 0.7, 0.7, seed=2))
    yield s
    s.server.stop()


# --- the attacks: (name, keyword arguments of httpx.Client.post) --------------------------------

def _upload(data: bytes, filename="predictions.csv", message="hostile", **extra) -> dict:
    return {"files": {"file": (filename, data, "text/csv")}, "data": {"message": message},
            **extra}


def _raw_multipart(parts: list[tuple[bytes, bytes]], boundary=b"hostile-b") -> dict:
    """A multipart body built by hand: (part headers, part body) each, bytes as given."""
    body = b"".join(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n"
                    for head, data in parts) + b"--" + boundary + b"--\r\n"
    return {"content": body,
            "headers": {"Content-Type": "multipart/form-data; boundary=" + boundary.decode()}}


def _chunks(total: int, size: int = 2**20):
    yield b'--c\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    yield b"id,label\n"
    row = b"1,2\n" * (size // 4)
    for _ in range(total // size):
        yield row


def attacks() -> list[tuple[str, dict]]:
    ragged = (Path(__file__).parent / "hostile" / "ragged.csv").read_bytes()
    # named by the file, so the error row each one leaves can be found
    cases = [(f"corpus:{p.stem}", _upload(p.read_bytes(), filename=f"{p.stem}.csv"))
             for p in CORPUS]
    cases += [
        ("10MB single line", _upload(b"id,label\n" + b"1" * (10 * 2**20))),
        ("10MB header", _upload(b"x" * (10 * 2**20))),
        ("10^5 columns", _upload(hundred_thousand_columns())),
        ("over the cap (declared length)", _upload(b"id,label\n" + b"1,2\n" * (CAP // 4 + 2**16))),
        ("over the cap (chunked, no length)",
         {"content": _chunks(CAP + 4 * 2**20),
          "headers": {"Content-Type": "multipart/form-data; boundary=c"}}),
        ("wrong file field name", {"files": {"upload": ("p.csv", ragged, "text/csv")}}),
        ("missing file field", {"data": {"message": "where is my file"}}),
        ("file sent as a text field", {"data": {"file": "id,label\n1,2\n"}}),
        ("two files", {"files": [("file", ("a.csv", ragged)), ("file", ("b.csv", ragged))]}),
        ("many fields", {"files": {"file": ("a.csv", ragged)},
                         "data": {f"f{i}": "x" for i in range(20)}}),
        ("not multipart", {"content": ragged, "headers": {"Content-Type": "text/csv"}}),
        ("json body", {"json": {"file": "id,label\n1,2\n"}}),
        ("no body", {}),
        ("multipart without its boundary",
         {"content": ragged, "headers": {"Content-Type": "multipart/form-data"}}),
        ("multipart cut short", {"content": b'--x\r\nContent-Disposition: form-data; name="fi',
                                 "headers": {"Content-Type": "multipart/form-data; boundary=x"}}),
        ("huge message", _upload(ragged, message="m" * (2 * 2**20))),
        ("non-UTF-8 message", _raw_multipart([
            (b'Content-Disposition: form-data; name="message"', b"caf\xe9 \xff\xfe\x80 \x00"),
            (b'Content-Disposition: form-data; name="file"; filename="p.csv"', ragged)])),
        ("NUL in the message", _upload(ragged, message="a\x00b")),
        ("non-UTF-8 filename", _raw_multipart([
            (b'Content-Disposition: form-data; name="file"; filename="\xff\xfe\x00.csv"',
             ragged)])),
        ("NUL in the filename", _upload(ragged, filename="evil\x00.csv")),
        ("10 kB filename", _upload(ragged, filename="f" * 10_000 + ".csv")),
    ]
    for trick in ("../../../../tmp/evil.csv", "..\\..\\evil.csv", "/etc/passwd",
                  "uploads/digits/1.csv", "../harness.db", "CON", ".", ""):
        cases.append((f"filename {trick!r}", _upload(ragged, filename=trick)))
    return cases


def _problem(name: str, response: httpx.Response) -> str | None:
    """Why an answer to a hostile upload is not a clear 4xx (None when it is)."""
    if not 400 <= response.status_code < 500:
        return f"{name}: status {response.status_code}: {response.text[:300]}"
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return f"{name}: no JSON detail: {response.text[:300]}"
    if isinstance(detail, list):     # FastAPI's validation errors: a list of {"msg"}
        detail = "; ".join(str(d.get("msg", d)) for d in detail)
    text = str(detail)
    if not 10 < len(text) < 600 or "\n" in text:
        return f"{name}: not a one-line message: {text[:300]!r}"
    lowered = text.lower()
    if any(bad in lowered for bad in INTERNALS + ("public", "private")):
        return f"{name}: internals or the split in the message: {text!r}"
    return None


def snapshot(s: Site) -> dict:
    """What a refused upload must not change (error rows are listed apart)."""
    rows = s.h.all_submissions(SLUG)
    return {
        "scored": [(r["id"], r["team"], r["public_score_full"], r["private_score_full"],
                    r["selected"]) for r in rows if r["status"] == "scored"],
        "errors": [r for r in rows if r["status"] != "scored"],
        "public": s.h.leaderboard(SLUG, "public")["rows"],
        "private": s.h.leaderboard(SLUG, "private", teacher=True)["rows"],
        "audit": s.h.audit_log(),
        "files": sorted(str(p.relative_to(s.home)) for p in s.home.rglob("*")
                        if p.is_file() and not p.name.startswith("harness.db")),
    }


table_cell = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats().map(str),
                       st.text(max_size=6), st.sampled_from(["", "1e400", "-0", "NaN", "１"]))
hostile_body = st.one_of(
    st.binary(max_size=3000),
    st.builds(lambda header, rows: (header + "\n" + "\n".join(",".join(r) for r in rows))
              .encode("utf-8", "surrogatepass"),
              st.sampled_from(["id,label", "label,id", "id", "id,label,x", "ID,Label"]),
              st.lists(st.lists(table_cell, min_size=1, max_size=3), max_size=40)))


def test_hostile_uploads_are_refused_cleanly_and_not_counted(site, make_predictions):
    url = UPLOAD_URL
    good = make_predictions(site.home, SLUG, 0.8, 0.8, seed=3)
    with site.client() as c:
        first = c.post(url, files={"file": ("good.csv", good)})
        assert first.status_code == 201, first.text
        remaining = first.json()["remaining_today"]
    assert remaining is not None and remaining >= 2
    batch = attacks()
    # hypothesis may run each example twice (and more while shrinking a failure)
    attackers = Attackers(site, len(batch) + 2 * RANDOM_UPLOADS)
    before, peak_before = snapshot(site), site.peak_rss()

    problems, answered, corpus_answers = [], [], {}
    try:
        for name, request in batch:
            try:
                response = attackers.post(url, **request)
            except httpx.TransportError as exc:     # the server may cut an over-cap body
                problems.append(f"{name}: no answer ({exc!r})")
                continue
            answered.append(response)
            problems.append(_problem(name, response))
            if name.startswith("corpus:"):
                corpus_answers[name.removeprefix("corpus:") + ".csv"] = response

        @settings(max_examples=RANDOM_UPLOADS, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(body=hostile_body, message=st.text(max_size=40), filename=st.text(max_size=40))
        def random_upload(body, message, filename):
            response = attackers.post(url, **_upload(body, filename=filename, message=message))
            answered.append(response)
            assert _problem("hypothesis", response) is None, _problem("hypothesis", response)

        random_upload()
    finally:
        attackers.close()
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)
    # each team stayed under the refusal limit, so every answer is about the request itself
    assert not [r.text for r in answered if r.status_code == 429]

    after = snapshot(site)
    for key in ("scored", "public", "private", "audit", "files"):
        assert after[key] == before[key], f"a refused upload changed {key}"
    old = {r["id"] for r in before["errors"]}
    new = [r for r in after["errors"] if r["id"] not in old]
    assert all(r["status"] == "error" and r["team"] in attackers.tokens for r in new)
    per_team = Counter(r["team"] for r in new)
    assert max(per_team.values()) <= min(PER_TEAM, STORED_REFUSALS), per_team
    assert len(new) <= len(answered)
    details = {r.json()["detail"] for r in answered if r.status_code == 400}
    assert {r["error"] for r in new} <= details          # recorded with the message shown
    # every corpus file reached the scorer, and its row keeps the message its team saw
    stored = {r["filename"]: r["error"] for r in new}
    assert {name: stored.get(name) for name in corpus_answers} == \
        {name: r.json()["detail"] for name, r in corpus_answers.items()}
    assert all(len(r["filename"]) <= 300 and len(r["message"]) <= 2000 for r in new)

    grew = site.peak_rss() - peak_before
    assert grew < MEMORY_FACTOR * CAP, \
        f"the server's peak memory grew {grew / 2**20:.0f} MB (cap {CAP_MB} MB)"

    # the server keeps serving, and none of the refusals was counted
    with site.client() as c:
        again = c.post(url, files={"file": ("../../evil\x00.csv",
                                            make_predictions(site.home, SLUG, 0.85, 0.8, seed=4))},
                       data={"message": "NUL \x00 in a message that is kept"})
    assert again.status_code == 201, again.text
    assert again.json()["remaining_today"] == remaining - 1
    assert (site.home / "uploads" / SLUG / f"{again.json()['id']}.csv").is_file()
    assert not list(site.home.parent.rglob("evil*"))
    kept = next(r for r in site.h.submissions(SLUG, site.attacker) if r["id"] == again.json()["id"])
    assert kept["message"] == "NUL \ufffd in a message that is kept"


def test_a_team_flooding_refused_files_gets_429_and_it_stores_nothing(site, make_predictions):
    team, token = site.h.add_team("mallory-flood")
    bad = CORPUS[:REFUSAL_LIMIT + 1]
    assert len(bad) == REFUSAL_LIMIT + 1
    before = snapshot(site)
    with site.client(token) as c:
        refused = [c.post(UPLOAD_URL, **_upload(p.read_bytes(), filename=f"{p.stem}.csv"))
                   for p in bad[:-1]]
        assert [r.status_code for r in refused] == [400] * REFUSAL_LIMIT, \
            [r.text for r in refused if r.status_code != 400]
        full = snapshot(site)
        # one more bad file, and then even a good one: refused before they are parsed
        over = [c.post(UPLOAD_URL, **_upload(bad[-1].read_bytes())),
                c.post(UPLOAD_URL, files={"file": ("good.csv", make_predictions(
                    site.home, SLUG, 0.9, 0.9, seed=5))})]
    for response in over:
        assert response.status_code == 429, response.text
        assert _problem("429", response) is None, _problem("429", response)
        assert "try again in" in response.json()["detail"]
        assert 1 <= int(response.headers["Retry-After"]) <= REFUSAL_WINDOW + 1
    assert snapshot(site) == full                      # the 429s stored nothing at all
    new = [r for r in full["errors"] if r["id"] not in {e["id"] for e in before["errors"]}]
    assert len(new) == REFUSAL_LIMIT and {r["team"] for r in new} == {team["name"]}
    for key in ("scored", "public", "private", "files"):
        assert full[key] == before[key]


def test_a_million_rows_of_wrong_ids_are_refused_in_bounded_memory(site):
    # apart from the batch: well-formed rows cost the scorer a few times their size (its
    # own tests bound that), more than the batch's bound in upload caps allows
    team, token = site.h.add_team("mallory-rows")
    data = million_wrong_ids()
    assert len(data) < CAP
    base = site.reset_peak()
    with site.client(token) as c:
        response = c.post(UPLOAD_URL, **_upload(data, filename="rows.csv"))
    grew = site.peak_rss() - base
    assert response.status_code == 400 and _problem("rows", response) is None, response.text
    assert response.json()["detail"].startswith("1000000 ids are not a test id")
    [row] = site.h.submissions(SLUG, team)
    assert (row["status"], row["filename"]) == ("error", "rows.csv")
    # the scorer's bound, plus the body as received and as read
    assert grew < MEMORY_PER_BYTE * len(data) + 2 * CAP, \
        f"the server's peak memory grew {grew / 2**20:.0f} MB for {len(data) / 2**20:.1f} MB"
