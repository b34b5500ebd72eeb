"""One flag style for every console script (`vlm-tv-eval`, `vlm-tv-leaderboard`): each flag
of two words answers to both `--flag_name` (lm-eval's and lmms-eval's spelling) and
`--flag-name`, so a user never has to remember which tool wants which. Help shows every flag's
default, and each flag's spellings once.

Here, in the package every tool already reads, so that the leaderboard need not import the
harness for it. Imports only argparse.
"""

from __future__ import annotations

import argparse
import textwrap


def spellings(flag: str) -> tuple[str, ...]:
    """The flag as given, then its other spelling: `--model_args` -> (`--model_args`,
    `--model-args`); `--submitted-by` -> (`--submitted-by`, `--submitted_by`). The first is
    the one usage lines show; a one-word flag has one spelling."""
    if not flag.startswith("--"):
        return (flag,)
    name = flag[2:]
    other = name.replace("_", "-") if "_" in name else name.replace("-", "_")
    return (flag,) if other == name else (flag, f"--{other}")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` that says every default, and lays descriptions out by paragraph.

    A default is appended as `(default: X)` unless the help already says it, or the default is
    None: then the help must say what leaving the flag out means (the tests hold every flag to
    that). A flag's spellings are shown once with its value: `--model_args, --model-args X`.
    A description's paragraphs are wrapped one by one; one whose lines are indented (a list)
    is kept as written.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, "*"):
            return text  # a required positional has no default
        return f"{text} (default: {'none' if action.default == '' else '%(default)s'})"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            if paragraph.startswith("  "):
                paragraphs.append("\n".join(indent + line for line in paragraph.splitlines()))
            else:  # not at a hyphen: `vlm-tv-eval` stays whole
                words = " ".join(paragraph.split())
                paragraphs.append(
                    textwrap.fill(
                        words,
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_on_hyphens=False,
                        break_long_words=False,
                    )
                )
        return "\n\n".join(paragraphs)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        value = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {value}"
