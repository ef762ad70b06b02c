"""Several machines: two `harness serve` processes on different ports, one PostgreSQL
database and one shared home (docs/deployment.md). Under concurrent load split across
both, the daily limit holds for a team hitting both servers, both serve the same boards,
and a teacher's close / reopen / reveal through the CLI reaches both at once (state is
read from the database on every request, never cached per process). Behind a reverse
proxy the bad-token throttle counts per forwarded address and per process.
"""

from __future__ import annotations

import concurrent.futures
import shutil
from collections import Counter

import httpx
import pytest
from click.testing import CliRunner

from harness.cli import main as cli_main
from harness.service import Harness
from test_faults import Upload, burst, check_boards, check_stored, make_uploads

LIMIT_SLUG = "digits"            # daily_limit 5
STATE_SLUG = "breast-cancer"     # its own competition: the reveal cannot touch the other test


class Cluster:
    """Two servers on one database and one home, and the teacher's Harness on both."""

    def __init__(self, h: Harness, servers):
        self.h, self.servers = h, servers
        self.urls = [s.url for s in servers]

    def get(self, url, path, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=url, timeout=60, headers=headers) as c:
            return c.get(path)

    def from_both(self, path, token=None) -> list:
        """The same GET answered by each server: [(status, json), (status, json)]."""
        out = []
        for url in self.urls:
            r = self.get(url, path, token)
            out.append((r.status_code, r.json()))
        return out

    def teacher_cli(self, *args) -> str:
        """A teacher command given the home and the database URL, run in this test's process:
        a third process to both servers, as from a third machine."""
        done = CliRunner().invoke(cli_main, [*args, "--home", str(self.h.home),
                                             "--database-url", self.h.database_url])
        assert done.exit_code == 0, done.output
        return done.output


@pytest.fixture(scope="module")
def cluster(fresh_postgres_url, _prepared_home, tmp_path_factory, start_server):
    url = fresh_postgres_url()
    home = tmp_path_factory.mktemp("shared") / "home"       # the folder NFS would share
    shutil.copytree(_prepared_home, home)
    h = Harness(home, url)                                   # schema made once, up front
    h.list_competitions()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:   # both boot at once: ~half the wait
        servers = list(pool.map(lambda _: start_server(home, url), range(2)))
    assert servers[0].url != servers[1].url
    return Cluster(h, servers)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_servers_one_database(cluster, make_predictions):
    """One test on purpose: under `pytest -n 2` tests of one module may run on both
    workers, and each would boot its own pair of servers."""
    limits_and_boards_hold_across_both(cluster, make_predictions)
    close_reopen_reveal_from_the_cli_reach_both(cluster, make_predictions)
    bad_token_throttle_is_per_forwarded_address_and_per_process(cluster)


def limits_and_boards_hold_across_both(cluster, make_predictions):
    """A team firing 20 files at both servers gets 5 scored; both serve the same boards."""
    h = cluster.h
    teams = {f"limit-{i}": h.add_team(f"limit-{i}")[1] for i in range(4)}
    # each team fires 20 files, alternating between the two servers, 16 at a time
    uploads = make_uploads(h.home, make_predictions, teams, 20, cluster.urls, LIMIT_SLUG)
    burst(uploads, 16, slug=LIMIT_SLUG)

    assert all(u.status in (201, 429) for u in uploads), \
        Counter((u.status, u.error[:60]) for u in uploads)
    for name in teams:
        mine = [u for u in uploads if u.team == name]
        ok = [u for u in mine if u.status == 201]
        assert len(ok) == 5, f"{name}: {len(ok)} scored of 20 with daily_limit 5"
        # each quota step was taken exactly once, whichever server took it
        assert sorted(u.body["remaining_today"] for u in ok) == [0, 1, 2, 3, 4]
        assert "today's limit of 5" in next(u for u in mine if u.status == 429).body["detail"]
    answered = Counter(u.url for u in uploads if u.status == 201)
    assert set(answered) == set(cluster.urls), f"one server took no upload: {answered}"
    counts = check_stored(h, uploads, LIMIT_SLUG)
    assert counts["answered"] == 20

    # both servers serve the same boards, equal to the rows recomputed by harness.rules
    public = check_boards(h, LIMIT_SLUG)
    (s1, b1), (s2, b2) = cluster.from_both(f"/api/competitions/{LIMIT_SLUG}/leaderboard")
    assert s1 == s2 == 200 and b1 == b2 and b1["rows"] == public["rows"]
    assert sum(r["entries"] for r in b1["rows"]) == 20 == len(h.all_submissions(LIMIT_SLUG))
    for name, token in teams.items():
        (s1, own1), (s2, own2) = cluster.from_both(
            f"/api/competitions/{LIMIT_SLUG}/submissions", token)
        assert s1 == s2 == 200 and own1 == own2 and len(own1) == 5
    (_, c1), (_, c2) = cluster.from_both(f"/api/competitions/{LIMIT_SLUG}",
                                         next(iter(teams.values())))
    assert c1 == c2 and c1["teams"] == 4


def close_reopen_reveal_from_the_cli_reach_both(cluster, make_predictions):
    """A teacher's close, reopen and reveal (CLI: home + database URL) reach both at once."""
    h = cluster.h
    teams = {f"state-{i}": h.add_team(f"state-{i}")[1] for i in range(4)}
    board = f"/api/competitions/{STATE_SLUG}/leaderboard"
    token = teams["state-0"]

    def upload_to_both(tag) -> list[Upload]:
        """Every team uploads once (half of them to each server), all at the same time;
        once per phase, as late uploads count against the daily limit too."""
        return burst(make_uploads(h.home, make_predictions, teams, 1, cluster.urls,
                                  STATE_SLUG, tag=tag), 4, slug=STATE_SLUG)

    before = upload_to_both("open: ")
    assert [u.status for u in before] == [201] * 4
    assert [s for s, _ in cluster.from_both(board + "?board=private", token)] == [403, 403]

    cluster.teacher_cli("close", STATE_SLUG)
    closed = upload_to_both("closed: ")
    assert [u.status for u in closed] == [403] * 4, [(u.url, u.body) for u in closed]
    assert [b["state"] for _, b in cluster.from_both(f"/api/competitions/{STATE_SLUG}",
                                                     token)] == ["closed", "closed"]

    cluster.teacher_cli("reopen", STATE_SLUG)
    reopened = upload_to_both("reopened: ")
    assert [u.status for u in reopened] == [201] * 4
    (_, public1), (_, public2) = cluster.from_both(board)
    assert public1 == public2

    cluster.teacher_cli("close", STATE_SLUG)
    cluster.teacher_cli("reveal", STATE_SLUG, "--yes")
    (s1, p1), (s2, p2) = cluster.from_both(board + "?board=private", token)
    assert s1 == s2 == 200 and p1 == p2 and p1["revealed"]
    assert p1["rows"] == h.leaderboard(STATE_SLUG, "private")["rows"]
    late = upload_to_both("late: ")
    assert [u.status for u in late] == [201] * 4
    assert all(u.body["late"] and u.body["private_score"] is not None for u in late)
    # late uploads never rank: both public boards are what they were before the reveal
    (_, after1), (_, after2) = cluster.from_both(board)
    assert after1["rows"] == after2["rows"] == public1["rows"]

    uploads = before + closed + reopened + late
    counts = check_stored(h, uploads, STATE_SLUG)
    assert counts["answered"] == 12 == len(h.all_submissions(STATE_SLUG))
    check_boards(h, STATE_SLUG)


def bad_token_throttle_is_per_forwarded_address_and_per_process(cluster):
    """What docs/deployment.md says about a reverse proxy: uvicorn trusts X-Forwarded-For
    from 127.0.0.1 (FORWARDED_ALLOW_IPS elsewhere), and each process counts on its own."""
    path = "/api/competitions"

    def bad(url, address):
        with httpx.Client(base_url=url, timeout=60, headers={
                "Authorization": "Bearer not-a-token", "X-Forwarded-For": address}) as c:
            return c.get(path).status_code

    url1, url2 = cluster.urls
    with concurrent.futures.ThreadPoolExecutor(10) as pool:   # the throttle delays each one
        assert set(pool.map(lambda _: bad(url1, "10.9.9.1"), range(30))) == {401}
    assert bad(url1, "10.9.9.1") == 429          # that student is blocked on this process,
    assert bad(url1, "10.9.9.2") == 401          # the others behind the proxy are not,
    assert bad(url2, "10.9.9.1") == 401          # and the other server counts its own
