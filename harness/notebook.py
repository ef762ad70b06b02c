"""The class server from a notebook: ``from harness import Client``.

A thin layer over the student commands' HTTP client (:class:`harness.client.Client`,
which the command line keeps using unchanged) that speaks pandas: the listings and the
leaderboard come back as DataFrames, the released files as DataFrames too, and a
submission may be a DataFrame.

Before anything is uploaded, the file is checked here with the server's own validation
(:func:`harness.scoring.parse_submission`) against what the released ``test.csv`` says, so
a file the server would refuse is refused at once, in the server's words, and never
counts. What only the hidden answers can tell (a score that overflows the metric) is
left to the server, which also remains the judge of everything else: where the released
files cannot tell (a teacher's own metric, class labels beyond those of ``train.csv``
and ``validation.csv``), the check lets the file through and the server decides.

Examples
--------
>>> from harness import Client                                   # doctest: +SKIP
>>> client = Client()               # the login of `harness login`, or HARNESS_SERVER/TOKEN
>>> data = client.download("digits", path="data/digits")
>>> result = client.submit("digits", predictions, message="logistic regression")
>>> client.leaderboard("digits").head()
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .client import Client as HttpClient
from .client import resolve_login
from .errors import HarnessError
from .metrics import METRICS, Metric
from .schemas import BoardRow, CompetitionSummary, PrivateBoardRow, Submission
from .scoring import AnswerKey, parse_submission

NO_SERVER = ("no server given: pass Client(server=\"http://10.0.0.5:8000\", token=...) with "
             "the address from your teacher, run `harness login --server URL --token TOKEN` "
             "once in a terminal, or set HARNESS_SERVER")
NO_TOKEN = ("no token: pass Client(token=...) with your team's token from your teacher, run "
            "`harness login --server URL --token TOKEN` once in a terminal, or set "
            "HARNESS_TOKEN")
UPLOAD_NAME = "submission.csv"        # the file name a DataFrame is uploaded under
BOARD_COLUMNS = ["rank", "team", "score", "low", "high", "tied", "entries", "last_submission",
                 "baseline", "submission_id"]


class Released(Mapping):
    """The released tables of one competition, by name without ``.csv``.

    ``data["train"]`` and ``data.train`` are the same DataFrame; ``path`` is the folder
    the files were saved in (None when they were only read).
    """

    def __init__(self, slug: str, tables: dict[str, pd.DataFrame], path: Path | None):
        self.slug, self._tables, self.path = slug, tables, path

    def __getitem__(self, name: str) -> pd.DataFrame:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"{self.slug!r} released no table {name!r}; it has "
                           f"{', '.join(self._tables)}") from None

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None

    def __iter__(self):
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def __dir__(self):
        return [*super().__dir__(), *self._tables]

    def __repr__(self) -> str:
        tables = ", ".join(f"{name} ({len(t)} rows x {t.shape[1]} columns)"
                           for name, t in self._tables.items())
        where = f"; saved in {self.path}" if self.path else ""
        return f"<{self.slug}: {tables}{where}>"


class Client:
    """A team's connection to the class server, for notebooks.

    Parameters
    ----------
    server : str, optional
        The server's address, e.g. ``http://10.0.0.5:8000``. Default: ``$HARNESS_SERVER``,
        else the one ``harness login`` stored.
    token : str, optional
        Your team's token. Default: ``$HARNESS_TOKEN``, else the stored login. Only the
        public leaderboard can be read without one.

    Examples
    --------
    >>> client = Client()                                         # doctest: +SKIP
    >>> client.competitions()[["slug", "metric", "deadline"]]
    >>> data = client.download("digits")
    >>> data.train.head()
    """

    def __init__(self, server: str | None = None, token: str | None = None):
        server, token = resolve_login(server, token)
        if not server:
            raise HarnessError(NO_SERVER)
        self._http = HttpClient(server, token)
        self.server = self._http.server
        self._checks: dict[str, AnswerKey] = {}      # slug -> what a submission must be

    def __repr__(self) -> str:                   # never the token: notebooks get shared
        return (f"Client(server={self.server!r}, "
                f"token={'set' if self._http.token else 'not set'})")

    def close(self) -> None:
        """Close the connection (what ``with Client() as client:`` does at its end)."""
        self._http.disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _token(self) -> HttpClient:
        if not self._http.token:
            raise HarnessError(NO_TOKEN)
        return self._http

    # ------------------------------------------------------------------ reading

    def competitions(self) -> pd.DataFrame:
        """The server's competitions, one row each (``deadline`` in UTC, NaT if none)."""
        return _frame(self._token().competitions(), list(CompetitionSummary.model_fields),
                      times=["deadline"])

    def competition(self, slug: str) -> dict:
        """One competition with its rules, ``id_column`` and ``target``."""
        return self._token().competition(slug)

    def download(self, slug: str, path: str | Path | None = None) -> Released:
        """The released tables (train, validation, test, sample_submission) as DataFrames.

        Parameters
        ----------
        slug : str
            The competition, e.g. ``"digits"``.
        path : str or Path, optional
            A folder to save the CSV files in as well (made if missing); by default they
            are only read.

        Returns
        -------
        Released
            ``data.train``, ``data["test"]``, ...
        """
        http = self._token()
        competition = http.competition(slug)
        if path is not None:
            return self._read(slug, competition, http.download(slug, path), Path(path))
        with tempfile.TemporaryDirectory(prefix=f"harness-{slug}-") as folder:
            return self._read(slug, competition, http.download(slug, folder), None)

    def _read(self, slug: str, competition: dict, files: list[Path],
              path: Path | None) -> Released:
        tables = {f.name.removesuffix(".csv"): pd.read_csv(f) for f in files}
        test = next((f for f in files if f.name == "test.csv"), None)
        if test is not None:
            labels = [t[competition["target"]] for name, t in tables.items()
                      if name in ("train", "validation") and competition["target"] in t]
            self._checks[slug] = submission_key(competition, test, labels)
        return Released(slug, tables, path)

    def submissions(self, slug: str) -> pd.DataFrame:
        """Your team's submissions, newest first (``submitted_at`` in UTC); ``id`` is what
        :meth:`select` takes."""
        return _frame(self._token().submissions(slug), list(Submission.model_fields),
                      times=["submitted_at"])

    def leaderboard(self, slug: str, board: str = "public") -> pd.DataFrame:
        """The whole board, best first, one row per team (and baseline).

        ``low`` and ``high`` bound each score's 95% interval; ``tied`` marks the teams not
        significantly different from the leader. The board's own facts (``metric``,
        ``greater_is_better``, ``revealed``, ``your_team``, ...) are in ``.attrs``.

        Parameters
        ----------
        board : {"public", "private"}
            The private board is there after the teacher reveals it (it needs a token).
        """
        result = self._http.leaderboard(slug, board)
        rows = [{**{k: v for k, v in r.items() if k != "interval"},
                 "low": (r.get("interval") or (None, None))[0],
                 "high": (r.get("interval") or (None, None))[1]} for r in result["rows"]]
        extra = [c for c in PrivateBoardRow.model_fields if c not in BoardRow.model_fields] \
            if board == "private" else []
        frame = _frame(rows, BOARD_COLUMNS + extra, times=["last_submission"])
        frame["rank"] = frame["rank"].astype("Int64")            # a baseline has none
        if "public_rank" in frame:
            frame["public_rank"] = frame["public_rank"].astype("Int64")
        frame.attrs.update({k: v for k, v in result.items() if k != "rows"})
        return frame

    # ------------------------------------------------------------------ writing

    def submit(self, slug: str, predictions, message: str = "") -> dict:
        """Check ``predictions`` as the server would, then upload them; scored at once.

        Parameters
        ----------
        slug : str
            The competition.
        predictions : DataFrame or path
            The id column and the target, one row per row of ``test.csv`` (like
            ``sample_submission.csv``); a DataFrame indexed by the id works too.
        message : str, optional
            What you tried (shown in your list of submissions).

        Returns
        -------
        dict
            The submission: ``id``, ``public_score``, ``remaining_today`` (None without a
            daily limit), ... (``private_score`` is None until the reveal).

        Raises
        ------
        harness.errors.SubmissionError
            The file would be refused: the server's own message; nothing was uploaded.
        """
        http = self._token()
        data, filename = _as_csv(predictions)
        if slug not in self._checks:       # the released test.csv says what is expected
            self.download(slug)
        parse_submission(data, self._checks[slug])
        return http.upload(slug, data, filename, message)

    def select(self, slug: str, ids: int | Iterable[int]) -> pd.DataFrame:
        """Choose your final submissions for the private board (replaces the old choice);
        returns the selected ones."""
        chosen = [ids] if isinstance(ids, (int, np.integer)) else list(ids)
        return _frame(self._token().select(slug, [int(i) for i in chosen]),
                      list(Submission.model_fields), times=["submitted_at"])


# ---------------------------------------------------------------------- helpers


def submission_key(competition: dict, test: Path, labels: list[pd.Series]) -> AnswerKey:
    """What the server checks a submission against, from the released files alone.

    The test ids come from ``test.csv`` (whole numbers when every id reads as one, as the
    server's answer key then holds them); the class labels are those of ``labels`` (the
    target of train.csv and validation.csv). No answers: the key validates, never scores.
    A metric this version does not know (a teacher's own) is not checked for labels or
    probabilities: the server knows what it wants.
    """
    id_column, target, task = competition["id_column"], competition["target"], \
        competition["task"]
    ids = _test_ids(test, id_column)
    metric = METRICS.get(competition["metric"])
    classes = None
    if metric is not None and task != "regression" and not metric.needs_proba and labels:
        found = sorted(pd.unique(pd.concat(labels, ignore_index=True).dropna()).tolist())
        # the server's labels are text only when all are, else numbers (read as floats)
        classes = np.asarray(found, dtype=object if all(isinstance(c, str) for c in found)
                             else np.float64)
    if metric is None:
        metric = Metric(competition["metric"], func=None,
                        greater_is_better=competition["greater_is_better"], tasks=(task,))
    return AnswerKey(id_column=id_column, target=target, ids=ids, y=np.empty(0),
                     public=np.zeros(len(ids), dtype=bool), metric=metric, task=task,
                     classes=classes)


def _test_ids(test: Path, id_column: str) -> np.ndarray:
    """The ids of ``test.csv`` as the server's answer key holds them."""
    for kind in (pa.int64(), pa.string()):
        try:
            table = pacsv.read_csv(test, convert_options=pacsv.ConvertOptions(
                include_columns=[id_column], column_types={id_column: kind}))
        except pa.ArrowInvalid:
            continue
        return table[id_column].to_numpy(zero_copy_only=False)
    raise HarnessError(f"the released {test.name} has no readable {id_column!r} column; "
                       "download the competition again")


def _as_csv(predictions) -> tuple[bytes, str]:
    """The bytes to upload and the file's name, from a DataFrame or a path."""
    if isinstance(predictions, pd.DataFrame):
        frame = predictions
        if frame.index.name is not None and frame.index.name not in frame.columns:
            frame = frame.reset_index()          # indexed by the id column
        return frame.to_csv(index=False).encode(), UPLOAD_NAME
    if isinstance(predictions, (str, Path)):
        path = Path(predictions)
        if not path.is_file():
            raise HarnessError(f"no file {str(path)!r}; give the path of your prediction "
                               "CSV, or the DataFrame itself")
        return path.read_bytes(), path.name
    raise TypeError(f"predictions must be a pandas DataFrame (the id column and the "
                    f"target, like sample_submission.csv) or the path of a CSV file, not "
                    f"{type(predictions).__name__}")


def _frame(rows: list[dict], columns: list[str], *, times: list[str] = ()) -> pd.DataFrame:
    """``rows`` as a DataFrame with ``columns`` first (all of them even with no rows),
    the ISO 8601 ``times`` as UTC datetimes."""
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=columns + [c for c in frame.columns if c not in columns])
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame
