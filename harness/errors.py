"""What can go wrong that is the user's to fix, as one family of exceptions.

Each is raised where the problem is found, with a one-line message that names the problem and
the fix; each command catches `HarnessError` once and prints it (`cli.main`). Anything else
that escapes is a bug in the harness, and keeps its traceback. They are ValueErrors: every one
is a bad value given to the harness (a flag, a file, a folder, a server).
"""

from __future__ import annotations


class HarnessError(ValueError):
    """Bad input of any kind; the message names the problem and the fix."""


class ConfigError(HarnessError):
    """A run's flags do not make a run: an unknown name, a value out of range, a combination
    the protocol does not allow."""


class ModelLoadError(HarnessError):
    """A model that cannot be loaded: weights not installed, not on disk, not reachable."""


class RunFolderError(HarnessError):
    """A run folder that cannot be used: not writable, busy with another run, in the way, or
    not a run's folder (judging)."""


class TaskFileError(HarnessError):
    """A task's items cannot be read: a malformed task file, a built dataset that is missing,
    damaged or of another kind."""


class JudgeConfigError(HarnessError):
    """The judge cannot run as configured (model, base_url, key)."""
