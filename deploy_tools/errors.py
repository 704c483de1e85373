"""The failures a deploy expects: each message says why and what to do."""


class DeployError(Exception):
    """A deploy cannot go on; the message says why and what to do."""


class HealthCheckFailed(DeployError):
    """The site did not answer well through nginx; the message has what it answered."""

    def __init__(self, message, answer):
        super().__init__(message)
        self.answer = answer
