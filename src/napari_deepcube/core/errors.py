"""The one exception type a user ever sees from the core."""


class InputError(ValueError):
    """A problem with what the user gave us: a file, an array or an option.

    The message names the problem and the fix in one or two sentences. The
    command line prints it without a traceback and exits with status 2; the
    napari widgets show it as a notification.
    """
