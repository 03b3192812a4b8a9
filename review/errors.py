class ApplicationError(Exception):
    """A rule of the application was broken by the request (not a bug).

    Services raise it; views turn it into a message or a 400/409, commands into a CommandError.
    """

    def __init__(self, message: str, *, code: str = "invalid", extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}
