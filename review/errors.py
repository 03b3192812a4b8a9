from core.errors import ApplicationError  # noqa: F401 - the one ApplicationError lives in core (moved)
