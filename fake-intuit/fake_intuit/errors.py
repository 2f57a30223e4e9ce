"""The Fault a refused write carries (qbo-api.md "Errors")."""

from __future__ import annotations


class WriteError(Exception):
    """A write Intuit refuses, carrying the Fault fields (qbo-api.md "Errors")."""

    def __init__(self, code: str, message: str, detail: str, element: str = "") -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail, self.element = code, message, detail, element


def not_found(entity: str, id_: str) -> WriteError:
    return WriteError(
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made "
        f"inactive. Check the fields with accounts, customers, items, vendors "
        f"or employees. ({entity} Id={id_})",
    )


def missing(element: str) -> WriteError:
    return WriteError(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {element} is missing in the request",
        element,
    )


def business(detail: str) -> WriteError:
    return WriteError(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def invalid_ref(element: str, id_: str) -> WriteError:
    return WriteError(
        "2500",
        "Invalid Reference Id",
        f"Invalid Reference Id : {element} id {id_} not found",
        element,
    )
