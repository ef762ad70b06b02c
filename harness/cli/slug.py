"""The competition a student command acts on: a positional SLUG, or ``-c/--competition
SLUG`` as the Kaggle CLI takes it, exactly one of the two."""

from __future__ import annotations

import functools

import click


def competition_slug(command=None, *, then: str | None = None):
    """Give a command its competition as ``SLUG`` or ``-c/--competition SLUG``.

    The command receives ``slug``. Use it bare (``@competition_slug``) or, for a command
    whose positional arguments go on after the slug (``harness select digits 12 17``),
    with ``then`` naming that argument (``@competition_slug(then="ids")``), placed above
    the argument's own decorator. With ``-c``, a word in the SLUG place is then the first
    of those arguments (``harness select -c digits 12 17``).

    Parameters
    ----------
    command : callable, optional
        The command's function.
    then : str, optional
        The parameter name of a ``nargs=-1`` argument that follows the slug.
    """
    def decorate(f):
        @functools.wraps(f)
        def run(*args, slug, competition, **kwargs):
            ctx = click.get_current_context()
            if competition is not None and slug is not None and then is not None:
                kwargs[then] = (_as_next(ctx, then, slug, competition), *kwargs[then])
                slug = None
            kwargs["slug"] = _one_slug(ctx, slug, competition)
            return f(*args, **kwargs)

        option = click.option("-c", "--competition", default=None, metavar="SLUG",
                              help="The competition, as the Kaggle CLI takes it (instead of "
                                   "SLUG).")
        return click.argument("slug", required=False)(option(run))

    return decorate if command is None else decorate(command)


def _one_slug(ctx: click.Context, slug: str | None, competition: str | None) -> str:
    if slug is not None and competition is not None:
        raise click.UsageError(
            f"the competition is given twice ({slug!r} and -c {competition!r}); give it "
            f"once: `harness {ctx.info_name} {competition}` or `harness {ctx.info_name} -c "
            f"{competition}`", ctx=ctx)
    if slug is None and competition is None:
        raise click.UsageError(
            f"which competition? Give its slug (`harness competitions` lists them), e.g. "
            f"`harness {ctx.info_name} digits` or `harness {ctx.info_name} -c digits`", ctx=ctx)
    return slug if slug is not None else competition


def _as_next(ctx: click.Context, name: str, word: str, competition: str):
    """``word``, found in the SLUG place beside ``-c``, as the first value of the
    argument ``name``; a word that cannot be one is the competition given twice."""
    param = next(p for p in ctx.command.params if p.name == name)
    try:
        return param.type.convert(word, param, ctx)
    except click.BadParameter:
        raise click.UsageError(
            f"the competition is given twice ({word!r} and -c {competition!r}); with -c, "
            f"only the {param.human_readable_name} follow: `harness {ctx.info_name} -c "
            f"{competition} ...`", ctx=ctx) from None
