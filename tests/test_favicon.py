"""Browsers, feed readers and bookmarks ask for /favicon.ico whatever a page links."""

from django.contrib.staticfiles import finders


def test_favicon_ico_leads_to_the_icon_every_page_links(client, db):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    assert "max-age=86400" in response["Cache-Control"]
    assert finders.find("favicon.svg")
    page = client.get("/history/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page


def test_favicon_ico_takes_no_posts(client, db):
    assert client.post("/favicon.ico").status_code == 405
