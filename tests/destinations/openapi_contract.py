"""Contract tests against a vendor's own OpenAPI description.

`ContractTransport` is an `httpx.MockTransport` whose handler is a fake of the vendor.
Every request a destination sends is validated against the descriptions in
`../shared/specs` (kept unchanged from the vendors' repositories), and so is every answer
the fake gives, so the fake cannot drift from the vendor either. A request that no
description covers fails the test, unless the test lists it as undescribed: then it is
recorded in `undescribed`, for the test to check against the vendor's documentation.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

# The repository's root is two folders up; CI and developers keep the specs beside it.
SPECS = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs"


@functools.cache
def description(name: str) -> OpenAPI:
    """One vendor description, parsed once per test session."""
    return OpenAPI.from_file_path(str(SPECS / name))


class OpenAPIRequest:
    """An `httpx.Request` as openapi-core's request protocol wants it."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        query = parse_qs(request.url.query.decode(), keep_blank_values=True)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, values in query.items() for v in values]),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return f"{self._request.url.scheme}://{self._request.url.netloc.decode()}"

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return str(self._request.headers.get("content-type", "")).lower()


class OpenAPIResponse:
    """An `httpx.Response` as openapi-core's response protocol wants it."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        return str(self._response.headers.get("content-type", "")).lower()

    @property
    def headers(self) -> Headers:
        return Headers(list(self._response.headers.items()))

    @property
    def data(self) -> bytes | None:
        return self._response.content or None


class UndescribedRequest(AssertionError):
    """No description covers the request, and the test did not expect that."""


@dataclass
class Exchange:
    request: httpx.Request
    response: httpx.Response
    description: str | None  # None for an undescribed request

    @property
    def body(self) -> Any:
        return json.loads(self.request.content) if self.request.content else None


@dataclass
class ContractTransport(httpx.BaseTransport):
    """A fake vendor whose every exchange is validated against the vendor's description.

    `descriptions` are file names in `../shared/specs`; each request is matched to the
    one that describes its path and method. `undescribed` lists (method, path regex) pairs
    the vendor documents but publishes no description for offline.
    """

    descriptions: Iterable[str]
    handler: Callable[[httpx.Request], httpx.Response]
    undescribed: Iterable[tuple[str, str]] = ()
    exchanges: list[Exchange] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        response = self.handler(request)
        response.read()
        self.exchanges.append(Exchange(request, response, self.validate(request, response)))
        return response

    def validate(self, request: httpx.Request, response: httpx.Response) -> str | None:
        """The name of the description that covers the exchange, after validating both."""
        wrapped = OpenAPIRequest(request)
        for name in self.descriptions:
            spec = description(name)
            try:
                spec.validate_request(wrapped)
            except (PathNotFound, OperationNotFound):
                continue
            spec.validate_response(wrapped, OpenAPIResponse(response))
            return name
        if any(
            request.method == method and re.fullmatch(pattern, request.url.path)
            for method, pattern in self.undescribed
        ):
            return None
        raise UndescribedRequest(
            f"no description in {list(self.descriptions)} covers {request.method} "
            f"{request.url.path}"
        )

    def sent(self, method: str, path_pattern: str) -> list[Exchange]:
        """The exchanges whose request matches a method and a path regex, in order."""
        return [
            e
            for e in self.exchanges
            if e.request.method == method and re.fullmatch(path_pattern, e.request.url.path)
        ]


class FakeClock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
