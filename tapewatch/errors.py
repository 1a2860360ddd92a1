"""The one error type the CLI turns into a single clear line and a non-zero exit."""


class TapewatchError(RuntimeError):
    """A user-facing failure: bad input, an unreachable service, a missing artifact."""
