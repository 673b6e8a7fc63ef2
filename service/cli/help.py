"""``--help`` as a dispatcher reads it: click's words for values, nothing for a flag.

typer 0.29's rich help puts an internal type tag beside every parameter (``<str>``, ``<bool>``,
``<float>``: ``TyperOption.display_type_rich``, shown by ``rich_utils._print_options_panel``),
which takes a column of an 80-column terminal and tells a person nothing (``--json <bool>``
reads as if the flag took a value). Each parameter of the assembled command tree gets its own
label here instead: ``TEXT``, ``FLOAT``, ``standard|fast``, or none for a flag or an argument
(its name says it), a number's range alone; a long list of choices moves into the help text,
so that at 80 columns no option or variable name is cut. Nothing of typer is patched: only
these parameters' labels change.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

# typer 0.29 bundles its own click (typer._click, private): its parameters are read through what
# they show (params, commands, param_type_name, is_flag, metavar, and typer's display_type)
CHOICES_WIDTH = 16  # a longer list of choices goes in the help text (it would squeeze the names)
WORDS = {"str": "TEXT", "float": "FLOAT", "int": "INT", "path": "PATH", "datetime": "DATETIME"}


def readable(command: Any) -> Any:
    """``command`` and its subcommands with readable value labels in their help."""
    for param in command.params:
        _relabel(param)
    help_option = command.get_help_option

    def labelled_help_option(ctx: Any) -> Any:
        # --help is made per context, not one of command.params
        return _relabel(help_option(ctx))

    setattr(command, "get_help_option", labelled_help_option)  # noqa: B010
    for sub in getattr(command, "commands", {}).values():
        readable(sub)
    return command


def _relabel(param: Any) -> Any:
    if param is None:
        return None
    setattr(param, "display_type_rich", MethodType(_label, param))  # noqa: B010  (a method of this instance only)
    choices = [str(getattr(c, "value", c)) for c in (getattr(param.type_descriptor, "choices", None) or ())]
    if len("|".join(choices)) > CHOICES_WIDTH and param.help and "one of" not in param.help:
        param.help = f"{param.help}; one of {', '.join(choices)}"
    return param


def _label(param: Any, ctx: Any) -> str | None:
    """What the help shows beside a parameter: its metavar when one was given, else click's word
    for the value (TEXT, FLOAT, [a|b] for a choice); nothing for a flag or an argument."""
    if param.param_type_name == "argument" or getattr(param, "is_flag", False):
        return None
    if param.metavar is not None:
        return str(param.metavar)
    tag = type(param).display_type(param, ctx).strip("<>")  # typer's own: "<str>", "<standard|fast>"
    if "|" in tag:
        return "|".join(tag.split("|")) if len(tag) <= CHOICES_WIDTH else "CHOICE"
    if tag.endswith(" range"):
        return ""  # typer adds the range ("[x>=1.0]"), which says it is a number in fewer columns
    bare = tag.removeprefix("list[").removesuffix("]").split()[0]
    return WORDS.get(bare.lower(), bare.upper())
