import json
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from public.serving import SnapshotWSGI


class Visitor:
    """A browser in front of the production stack (statuspage.wsgi): the snapshot's
    WSGI layer answers what it can, Django (the test client) the rest. Anything else
    (force_login, cookies) is the test client's."""

    def __init__(self, django_client):
        self.django = django_client
        self.factory = RequestFactory()

    def __getattr__(self, name):
        return getattr(self.django, name)

    def generic(self, method, path, data=b"", content_type="", secure=False, **extra):
        environ = self.factory.generic(
            method, path, data, content_type, secure=secure, **extra
        ).environ
        handed_on = []

        def django(environ, start_response):
            handed_on.append(True)
            return []

        answer: dict[str, Any] = {}
        body = b"".join(
            SnapshotWSGI(django)(environ, lambda status, items: answer.update(s=status, h=items))
        )
        if handed_on:
            return self.django.generic(method, path, data, content_type, secure=secure, **extra)
        response = HttpResponse(body, status=int(answer["s"][:3]))
        del response["Content-Type"]
        for name, value in answer["h"]:
            response[name] = value
        response.json = lambda: json.loads(response.content)  # type: ignore[attr-defined]
        return response

    def get(self, path, data=None, secure=False, **extra):
        if data:
            path = f"{path}?{self.factory.get(path, data).environ['QUERY_STRING']}"
        return self.generic("GET", path, secure=secure, **extra)

    def head(self, path, secure=False, **extra):
        return self.generic("HEAD", path, secure=secure, **extra)


@pytest.fixture
def visitor(client):
    return Visitor(client)
