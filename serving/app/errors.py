"""What the app says when a call goes wrong: one readable message per problem, never a
traceback. The app keeps working after any of them (each is shown, then the script goes on)."""

from __future__ import annotations

from serving.client import ClientError

NOT_ANSWERING = (
    "The {endpoint} endpoint is not answering at {url}: start it with `emoreview serve start`."
)
NO_TOKEN = (
    "No inference token at {key_file}: TorchServe writes it when it starts. Start it with "
    "`emoreview serve start` (or set app.key_file to its key_file.json)."
)
TOKEN_REFUSED = (
    "The server refused the app's token (expired or renewed): issue a new one with "
    "`emoreview serve token`, then try again."
)


def client_error_message(error: ClientError, endpoint: str, url: str, key_file: str) -> str:
    """A person's sentence for what went wrong calling ``endpoint``."""
    if error.problem == "unreachable":
        return NOT_ANSWERING.format(endpoint=endpoint, url=url)
    if error.problem == "no_token":
        return NO_TOKEN.format(key_file=key_file)
    if error.problem == "token_refused":
        return TOKEN_REFUSED
    reason = str(error).split(": ", 1)[-1]
    if error.problem == "rejected":
        return f"The {endpoint} endpoint refused this request: {reason}"
    return (
        f"The {endpoint} endpoint failed ({error.status}): {reason} Try again, or see "
        "`emoreview serve status`."
    )
