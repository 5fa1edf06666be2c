"""Errors a user can cause, as opposed to bugs.

Every stage's command line turns a :class:`UserError` into one line on stderr and exit code 2,
before or after Ray has started; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for: a config value, a path, a checkpoint, an input.

    The message names the setting or file and what was expected, in one line.
    """


class ConfigError(UserError, ValueError):
    """A configuration that does not match the schema: unknown key, bad type, bad value."""


class InputError(UserError, ValueError):
    """An input (catalogue, manifest, shards, checkpoint) that does not exist or holds nothing usable."""
