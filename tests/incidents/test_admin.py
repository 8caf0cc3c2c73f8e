"""The operators' admin: every page renders, writes go through the services (and so
queue the affected-tailnet recompute), the blast radius is on the incident's page,
nothing user-provided is rendered unescaped, and big lists stay a fixed number of
queries."""

from datetime import timedelta

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from fleet.services import tailnet_create, tailnet_migrate
from incidents import services
from incidents.models import (
    AuditEntry,
    Component,
    ComponentGroup,
    Incident,
    IncidentComponent,
    IncidentUpdate,
    Placement,
    Shard,
    ShardImpact,
    Tailnet,
    TailnetImpact,
)
from incidents.services import WindowSpec, incident_create
from tests.conftest import T0

M = timedelta(minutes=1)
EVIL = "<script>alert('pwned')</script> & co"


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Production settings use the manifest storage, which needs collectstatic; the
    admin's pages load static files."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run after-commit callbacks (the recompute) as production does."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run


def _outage(committed, shards, start, end, *, title="Coordination server unavailable", **kw):
    with committed():
        return incident_create(
            title=title,
            body="We are investigating failed logins.",
            started_at=start,
            shard_impacts=[WindowSpec(s, kw.pop("level", "outage"), start, end) for s in shards],
            published=kw.pop("published", True),
            at=start,
            **kw,
        )


@pytest.fixture
def world(fleet, committed):
    """acme and evil on use1 (hit by a 24-minute outage), globex on use2 (not hit)."""
    acme = tailnet_create(slug="acme", display_name="acme.com", shard="use1", at=T0 - 30 * M)
    globex = tailnet_create(slug="globex", display_name="globex.com", shard="use2", at=T0 - M)
    evil = tailnet_create(slug="evil", display_name=EVIL, shard="use1", at=T0 - M)
    incident = _outage(committed, ["use1"], T0, T0 + 24 * M)
    IncidentComponent.objects.create(
        incident=incident, component=fleet["us"], status="major_outage"
    )
    return {**fleet, "acme": acme, "globex": globex, "evil": evil, "incident": incident}


def _url(model, view, *args):
    return reverse(f"admin:incidents_{model._meta.model_name}_{view}", args=args)


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def _post_data(response):
    """What a browser would post back for the change form in ``response``: the main
    form and every inline formset, with their current values."""
    data = {}

    def add(form):
        for field in form:
            widget = getattr(field.field.widget, "widget", field.field.widget)
            value = field.value()
            if isinstance(widget, forms.MultiWidget):
                for i, part in enumerate(widget.decompress(value)):
                    data[f"{field.html_name}_{i}"] = "" if part is None else str(part)
            elif isinstance(value, bool) or isinstance(field.field, forms.BooleanField):
                if value:
                    data[field.html_name] = "on"
            else:
                data[field.html_name] = "" if value is None else str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def _add_row(data, prefix, **fields):
    """Append one new row to the inline formset ``prefix``."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    for name, value in fields.items():
        if hasattr(value, "tzinfo"):
            data[f"{prefix}-{index}-{name}_0"] = value.strftime("%Y-%m-%d")
            data[f"{prefix}-{index}-{name}_1"] = value.strftime("%H:%M:%S")
        else:
            data[f"{prefix}-{index}-{name}"] = "" if value is None else str(value)
    return data


def _split(name, value):
    return {f"{name}_0": value.strftime("%Y-%m-%d"), f"{name}_1": value.strftime("%H:%M:%S")}


# --- Every page renders ----------------------------------------------------------------


def _sample(model, world):
    return {
        ComponentGroup: lambda: ComponentGroup.objects.first(),
        Component: lambda: world["us"],
        Shard: lambda: world["use1"],
        Tailnet: lambda: world["acme"],
        Placement: lambda: world["acme"].placements.get(),
        Incident: lambda: world["incident"],
        IncidentUpdate: lambda: world["incident"].updates.get(),
        ShardImpact: lambda: world["incident"].shard_impacts.get(),
        TailnetImpact: lambda: TailnetImpact.objects.filter(incident=world["incident"]).first(),
    }[model]()


EDITABLE = [
    ComponentGroup,
    Component,
    Shard,
    Tailnet,
    Incident,
    IncidentUpdate,
    ShardImpact,
]


@pytest.mark.parametrize("model", [*EDITABLE, Placement, TailnetImpact], ids=lambda m: m.__name__)
def test_changelist_and_change_page_render(admin_client, world, model):
    assert admin_client.get(_url(model, "changelist")).status_code == 200
    obj = _sample(model, world)
    assert obj is not None
    assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", EDITABLE, ids=lambda m: m.__name__)
def test_add_page_renders(admin_client, world, model):
    assert admin_client.get(_url(model, "add")).status_code == 200


def test_affected_tailnet_rows_cannot_be_added_changed_or_deleted(admin_client, world):
    row = TailnetImpact.objects.filter(incident=world["incident"]).first()
    assert admin_client.get(_url(TailnetImpact, "add")).status_code == 403
    assert admin_client.get(_url(TailnetImpact, "delete", row.pk)).status_code == 403
    page = admin_client.get(_url(TailnetImpact, "change", row.pk))
    assert 'name="_save"' not in page.content.decode()  # view only
    assert admin_client.post(_url(TailnetImpact, "change", row.pk), {}).status_code == 403


def test_incident_components_are_an_inline_of_the_incident(admin_client, world):
    page = admin_client.get(_url(Incident, "change", world["incident"].pk)).content.decode()
    assert "affected_components-0-component" in page
    assert 'value="major_outage" selected' in page


def test_component_statuses_set_on_the_incident_page_are_saved_and_audited(
    admin_client, admin_user, world
):
    incident = world["incident"]
    admin_console = Component.objects.create(slug="admin-console", name="Admin console")
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    data["affected_components-0-status"] = "partial_outage"
    _add_row(data, "affected_components", component=admin_console.pk, status="degraded_performance")
    response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    assert sorted(incident.affected_components.values_list("component__slug", "status")) == [
        ("admin-console", "degraded_performance"),
        (world["us"].slug, "partial_outage"),
    ]
    entry = AuditEntry.objects.get(incident=incident, action="components.edit")
    assert entry.user == admin_user
    assert entry.changes == {
        world["us"].slug: ["major_outage", "partial_outage"],
        "admin-console": [None, "degraded_performance"],
    }

    # A row switched to another component unlinks the one it had.
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    rows = {data[f"affected_components-{i}-component"]: i for i in range(2)}
    data[f"affected_components-{rows[str(admin_console.pk)]}-component"] = str(
        Component.objects.create(slug="login", name="Login").pk
    )
    assert admin_client.post(_url(Incident, "change", incident.pk), data).status_code == 302
    assert sorted(incident.affected_components.values_list("component__slug", flat=True)) == [
        world["us"].slug,
        "login",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "?incident__id__exact=999999",
        "?tailnet__id__exact=abc",
        "?q=acme",
        "?level=outage",
        "?ongoing=yes",
        "?o=-8",
    ],
)
def test_affected_tailnet_list_filters_never_fail(admin_client, world, query):
    response = admin_client.get(_url(TailnetImpact, "changelist") + query)
    assert response.status_code in (200, 302)


# --- The blast radius on the incident's page -------------------------------------------


def test_the_incident_page_lists_its_affected_tailnets(admin_client, world):
    incident = world["incident"]
    page = admin_client.get(_url(Incident, "change", incident.pk)).content.decode()

    assert "2 tailnets, " in page  # the blast radius
    assert "Outage: 2" in page
    for slug in ("acme", "evil"):
        tailnet = world[slug]
        assert f'<a href="{_url(Tailnet, "change", tailnet.pk)}">{slug}</a>' in page
    assert "globex" not in page  # on another shard
    assert '<td title="1440 s">24</td>' in page  # minutes
    assert (T0 + 24 * M).strftime("%Y-%m-%d %H:%M:%S UTC") in page
    link = _url(TailnetImpact, "changelist") + f"?incident__id__exact={incident.pk}"
    assert f'<a href="{link}">All 2 affected tailnets</a>' in page


def test_minutes_are_clipped_to_the_time_on_the_shard(admin_client, world, committed):
    with committed():
        tailnet_migrate(tailnet=world["acme"], to_shard="use2", at=T0 + timedelta(seconds=210))
    page = admin_client.get(_url(Incident, "change", world["incident"].pk)).content.decode()
    assert '<td title="210 s">3.5</td>' in page


def test_the_affected_tailnet_list_filtered_by_incident(admin_client, world, committed):
    other = _outage(committed, ["use2"], T0 + 60 * M, T0 + 70 * M, title="Slow logins")
    url = _url(TailnetImpact, "changelist")
    page = admin_client.get(url + f"?incident__id__exact={world['incident'].pk}").content.decode()
    assert ">acme</a>" in page
    assert ">globex</a>" not in page
    assert "Coordination server unavailable" in page  # the selected filter, by name
    page = admin_client.get(url + f"?incident__id__exact={other.pk}").content.decode()
    assert ">globex</a>" in page
    assert ">acme</a>" not in page
    page = admin_client.get(url + "?q=globex").content.decode()
    assert ">globex</a>" in page
    assert ">acme</a>" not in page


def test_an_incident_without_affected_tailnets_says_so(admin_client, world):
    quiet = incident_create(title="Docs typo", body="Fixed a typo.", started_at=T0)
    page = admin_client.get(_url(Incident, "change", quiet.pk)).content.decode()
    assert "No tailnet was on an impacted shard" in page


def test_the_incident_list_counts_affected_tailnets(admin_client, world):
    page = admin_client.get(_url(Incident, "changelist")).content.decode()
    link = _url(TailnetImpact, "changelist") + f"?incident__id__exact={world['incident'].pk}"
    assert f'<a href="{link}">2</a>' in page
    assert "so far" in page  # still open: its duration grows


def test_a_tailnet_page_shows_its_placements_and_impacts(admin_client, world, committed):
    with committed():
        tailnet_migrate(tailnet=world["acme"], to_shard="use2", at=T0 + 10 * M)
    page = admin_client.get(_url(Tailnet, "change", world["acme"].pk)).content.decode()
    assert "use1" in page
    assert "use2" in page
    assert "Coordination server unavailable" in page
    assert '<td title="600 s">10</td>' in page
    assert f"?tailnet__id__exact={world['acme'].pk}" in page


# --- Escaping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "shows_name"),
    [
        (lambda w: _url(Incident, "change", w["incident"].pk), True),
        (lambda w: _url(Tailnet, "changelist"), True),
        (lambda w: _url(Tailnet, "change", w["evil"].pk), True),
        (
            lambda w: _url(TailnetImpact, "changelist") + f"?tailnet__id__exact={w['evil'].pk}",
            False,
        ),
    ],
    ids=["incident", "tailnets", "tailnet", "affected-tailnets"],
)
def test_html_in_a_display_name_is_escaped(admin_client, world, page, shows_name):
    html = admin_client.get(page(world)).content.decode()
    assert "<script>alert(" not in html
    assert ("&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; co" in html) == shows_name


def test_html_in_titles_and_update_bodies_is_escaped(admin_client, world):
    incident = world["incident"]
    Incident.objects.filter(pk=incident.pk).update(title=EVIL)
    IncidentUpdate.objects.filter(incident=incident).update(body=EVIL + "\n\n**bold**")
    for url in (
        _url(Incident, "changelist"),
        _url(Incident, "change", incident.pk),
        _url(Tailnet, "change", world["acme"].pk),
        _url(TailnetImpact, "changelist"),
        _url(IncidentUpdate, "changelist"),
    ):
        html = admin_client.get(url).content.decode()
        assert "<script>alert(" not in html, url
    html = admin_client.get(_url(Incident, "change", incident.pk)).content.decode()
    assert "<strong>bold</strong>" in html  # the rendered, sanitized Markdown


# --- Actions ---------------------------------------------------------------------------


def _action(client, action, *incidents):
    return client.post(
        _url(Incident, "changelist"),
        {"action": action, "_selected_action": [i.pk for i in incidents]},
        follow=True,
    )


def test_publish_selected(admin_client, world):
    drafts = [incident_create(title=f"Draft {i}", body="x", started_at=T0) for i in range(2)]
    response = _action(admin_client, "publish_selected", *drafts)
    assert response.status_code == 200
    assert "Published 2 incident(s)." in _messages(response)
    for draft in drafts:
        draft.refresh_from_db()
        assert draft.published
        assert draft.published_at is not None


def test_resolve_selected_posts_a_resolved_update(admin_client, admin_user, world, committed):
    ongoing = _outage(committed, ["use1"], T0 + 60 * M, None, title="Still down")
    maintenance = incident_create(
        title="DB upgrade",
        body="Upgrading.",
        kind="maintenance",
        status="in_progress",
        scheduled_for=T0,
        scheduled_until=T0 + 60 * M,
    )
    with committed():
        response = _action(
            admin_client, "resolve_selected", ongoing, maintenance, world["incident"]
        )

    assert "Resolved 3 incident(s)." in _messages(response)
    ongoing.refresh_from_db()
    maintenance.refresh_from_db()
    assert (ongoing.status, maintenance.status) == ("resolved", "completed")
    assert ongoing.resolved_at is not None
    update = ongoing.updates.first()
    assert (update.status, update.body, update.created_by) == (
        "resolved",
        "This incident has been resolved.",
        admin_user,
    )
    assert maintenance.updates.first().body == "The scheduled maintenance has been completed."
    # Resolving closed the open window, and the affected tailnets were recomputed.
    assert ongoing.shard_impacts.get().ends_at == ongoing.resolved_at
    assert not TailnetImpact.objects.filter(incident=ongoing, ends_at__isnull=True).exists()

    response = _action(admin_client, "resolve_selected", ongoing)
    assert "1 incident(s) were already closed." in _messages(response)


def test_resolving_from_the_admin_and_the_api_gives_the_same_page(admin_client, world):
    """Alice resolves one outage from the admin, Bob's script the same outage through
    the API: the timelines and the components' statuses must read the same."""

    def outage(title):
        incident = incident_create(
            title=title,
            body="Logins fail.",
            started_at=T0,
            components={world["us"]: "major_outage"},
            shard_impacts=[WindowSpec("use1", "outage", T0)],
            published=True,
        )
        return incident

    by_admin, by_api = outage("From the admin"), outage("From the API")
    _action(admin_client, "resolve_selected", by_admin)
    response = admin_client.post(
        f"/api/v1/incidents/{by_api.pk}/resolve", {}, content_type="application/json"
    )
    assert response.status_code == 200, response.content

    def seen(incident):
        incident.refresh_from_db()
        latest = incident.updates.first()
        return (
            incident.status,
            latest.status,
            latest.body,
            latest.affected_components,
            list(incident.affected_components.values_list("component__slug", "status")),
            [w.ends_at == incident.resolved_at for w in incident.shard_impacts.all()],
        )

    assert seen(by_admin) == seen(by_api)
    assert seen(by_admin)[2:5] == (
        "This incident has been resolved.",
        [
            {
                "code": world["us"].slug,
                "name": world["us"].name,
                "old_status": "major_outage",
                "new_status": "operational",
            }
        ],
        [(world["us"].slug, "operational")],
    )


def test_resolve_shows_service_errors_as_messages(admin_client, world):
    future = incident_create(
        title="Next week",
        body="Planned.",
        kind="maintenance",
        scheduled_for=T0 + timedelta(days=3650),
        scheduled_until=T0 + timedelta(days=3651),
    )
    response = _action(admin_client, "resolve_selected", future)
    assert response.status_code == 200
    assert any(
        "Not resolved: Next week: An incident cannot be resolved before it started." in m
        for m in _messages(response)
    )
    future.refresh_from_db()
    assert future.status == "scheduled"


def test_recompute_action_rebuilds_the_affected_tailnets(admin_client, world, committed):
    incident = world["incident"]
    TailnetImpact.objects.filter(incident=incident).delete()
    with committed():
        response = _action(admin_client, "recompute_affected_tailnets", incident)
    assert "Queued a recompute of the affected tailnets of 1 incident(s)." in _messages(response)
    assert TailnetImpact.objects.filter(incident=incident).count() == 2
    incident.refresh_from_db()
    assert incident.impacts_computed_at >= incident.impacts_changed_at


# --- Writing through the incident's page -----------------------------------------------


def test_adding_an_incident_goes_through_the_service(admin_client, admin_user, world, committed):
    data = {
        "title": "Login failures",
        "kind": "incident",
        "status": "investigating",
        "impact": "major",
        "source": "manual",
        "body": "Logins fail on **use2**.",
        **_split("started_at", T0 + 60 * M),
        **_split("detected_at", T0 + 62 * M),
        **{f"{name}_{i}": "" for name in ("scheduled_for", "scheduled_until") for i in (0, 1)},
        "affected_components-TOTAL_FORMS": "0",
        "affected_components-INITIAL_FORMS": "0",
        "shard_impacts-TOTAL_FORMS": "0",
        "shard_impacts-INITIAL_FORMS": "0",
    }
    _add_row(data, "affected_components", component=world["us"].pk, status="partial_outage")
    _add_row(
        data,
        "shard_impacts",
        shard=world["use2"].pk,
        level="partial",
        starts_at=T0 + 60 * M,
        ends_at=T0 + 90 * M,
    )
    with committed():
        response = admin_client.post(_url(Incident, "add"), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    incident = Incident.objects.get(title="Login failures")
    assert not incident.published
    assert incident.created_by == admin_user
    assert incident.updates.get().body == "Logins fail on **use2**."
    assert incident.affected_components.get().status == "partial_outage"
    # The window queued the recompute: globex (on use2) is affected for 30 minutes.
    assert list(
        TailnetImpact.objects.filter(incident=incident).values_list("tailnet__slug", "seconds")
    ) == [("globex", 1800)]


def test_a_maintenance_defaults_to_scheduled_and_needs_a_schedule(admin_client, world):
    data = {
        "title": "Upgrade",
        "kind": "maintenance",
        "status": "investigating",
        "impact": "maintenance",
        "source": "manual",
        "body": "We upgrade the bus.",
        **{f"{n}_{i}": "" for n in ("started_at", "detected_at") for i in (0, 1)},
        **{f"{n}_{i}": "" for n in ("scheduled_for", "scheduled_until") for i in (0, 1)},
        "affected_components-TOTAL_FORMS": "0",
        "affected_components-INITIAL_FORMS": "0",
        "shard_impacts-TOTAL_FORMS": "0",
        "shard_impacts-INITIAL_FORMS": "0",
    }
    response = admin_client.post(_url(Incident, "add"), data)
    assert response.status_code == 200
    assert "A maintenance needs a schedule" in response.content.decode()
    assert not Incident.objects.filter(title="Upgrade").exists()

    data.update(_split("scheduled_for", T0 + 60 * M), **_split("scheduled_until", T0 + 90 * M))
    response = admin_client.post(_url(Incident, "add"), data)
    assert response.status_code == 302
    upgrade = Incident.objects.get(title="Upgrade")
    assert (upgrade.status, upgrade.started_at) == ("scheduled", T0 + 60 * M)


def test_adding_a_window_on_the_incident_page_recomputes(admin_client, world, committed):
    incident = world["incident"]
    before = Incident.objects.get(pk=incident.pk).impacts_changed_at
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    _add_row(
        data,
        "shard_impacts",
        shard=world["use2"].pk,
        level="degraded",
        starts_at=T0,
        ends_at=T0 + 5 * M,
    )
    with committed():
        response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    incident.refresh_from_db()
    assert incident.impacts_changed_at > before
    assert incident.impacts_computed_at >= incident.impacts_changed_at
    rows = TailnetImpact.objects.filter(incident=incident).values_list("tailnet__slug", "level")
    assert sorted(rows) == [("acme", "outage"), ("evil", "outage"), ("globex", "degraded")]


def test_changing_a_window_on_the_incident_page_recomputes(admin_client, world, committed):
    incident = world["incident"]
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    data.update(_split("shard_impacts-0-ends_at", T0 + 10 * M))
    with committed():
        response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 302
    assert set(
        TailnetImpact.objects.filter(incident=incident).values_list("seconds", flat=True)
    ) == {600}


def test_a_window_edited_in_the_admin_moves_the_incident_in_the_v2_json(
    admin_client, world, committed, time_machine
):
    """A window shortened in the admin changes what the public sees of the incident,
    so Statuspage clients polling updated_at must see it move."""
    incident = world["incident"]
    time_machine.move_to(T0 + 60 * M, tick=False)
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    data.update(_split("shard_impacts-0-ends_at", T0 + 10 * M))
    with committed():
        response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    listed = admin_client.get("/api/v2/incidents.json").json()["incidents"]
    (shown,) = [i for i in listed if i["id"] == str(incident.pk)]
    assert shown["updated_at"] == "2026-01-05T11:00:00.000Z"


def test_admin_edits_leave_an_audit_entry_naming_the_operator(
    admin_client, admin_user, world, committed
):
    incident = world["incident"]
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    data["title"] = "Coordination server unavailable in us-east"
    data.update(_split("shard_impacts-0-ends_at", T0 + 10 * M))
    with committed():
        response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    entries = {e.action: e for e in AuditEntry.objects.filter(incident=incident)}
    assert entries["incident.edit"].user == admin_user
    assert entries["incident.edit"].changes == {
        "title": ["Coordination server unavailable", "Coordination server unavailable in us-east"]
    }
    assert entries["impact.edit"].user == admin_user
    assert entries["impact.edit"].changes["ends_at"] == [
        "2026-01-05T10:24:00+00:00",
        "2026-01-05T10:10:00+00:00",
    ]
    assert entries["impact.edit"].remote_addr == "127.0.0.1"


def test_a_postmortem_written_in_the_admin_is_published_at_once(
    admin_client, world, committed, time_machine
):
    """As through the API: the public incident page shows a postmortem from the
    moment it is written, and says since when."""
    incident = world["incident"]
    with committed():
        services.incident_resolve(incident=incident, at=T0 + 30 * M)
    time_machine.move_to(T0 + 3 * 24 * 60 * M, tick=False)
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    data["postmortem"] = "### What happened\n\nA message bus filled up."
    response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    incident.refresh_from_db()
    assert incident.postmortem_published_at == T0 + 3 * 24 * 60 * M
    page = admin_client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "A message bus filled up." in page


def test_the_admin_uses_no_private_name_of_a_service_module():
    import ast
    import inspect

    from incidents import admin as incidents_admin

    tree = ast.parse(inspect.getsource(incidents_admin))
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "services"
        and node.attr.startswith("_")
    ]
    private += [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("services")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_overlapping_windows_on_one_shard_are_refused(admin_client, world):
    incident = world["incident"]
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    _add_row(
        data,
        "shard_impacts",
        shard=world["use1"].pk,
        level="partial",
        starts_at=T0 + 10 * M,
        ends_at=T0 + 30 * M,
    )
    response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 200
    assert "Impact windows on shard &#x27;use1&#x27; overlap" in response.content.decode()
    assert incident.shard_impacts.count() == 1


def test_a_new_update_goes_through_the_service(admin_client, admin_user, world, committed):
    ongoing = _outage(committed, ["use1"], T0 + 60 * M, None, title="Still down")
    data = _post_data(admin_client.get(_url(Incident, "change", ongoing.pk)))
    _add_row(data, "updates", status="resolved", body="Fixed: the bus is back.")
    with committed():
        response = admin_client.post(_url(Incident, "change", ongoing.pk), data)
    assert response.status_code == 302, response.context and response.context["errors"]

    ongoing.refresh_from_db()
    assert ongoing.status == "resolved"
    assert ongoing.resolved_at is not None
    assert ongoing.shard_impacts.get().ends_at == ongoing.resolved_at
    latest = ongoing.updates.first()
    assert (latest.body, latest.created_by) == ("Fixed: the bus is back.", admin_user)


def test_a_new_update_with_a_status_of_the_other_kind_is_refused(admin_client, world):
    incident = world["incident"]
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    _add_row(data, "updates", status="completed", body="Done.")
    response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 200
    assert "not valid for incident" in response.content.decode()
    assert incident.updates.count() == 1


def test_publishing_on_the_incident_page_uses_the_service(admin_client, world):
    draft = incident_create(title="Draft", body="x", started_at=T0)
    data = _post_data(admin_client.get(_url(Incident, "change", draft.pk)))
    data["published"] = "on"
    assert admin_client.post(_url(Incident, "change", draft.pk), data).status_code == 302
    draft.refresh_from_db()
    assert draft.published
    assert draft.published_at is not None


def test_unpublishing_on_the_incident_page_takes_it_back_to_a_draft(
    admin_client, admin_user, world
):
    incident = world["incident"]
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    data.pop("published")
    assert admin_client.post(_url(Incident, "change", incident.pk), data).status_code == 302
    incident.refresh_from_db()
    assert (incident.published, incident.published_at) == (False, None)
    entry = AuditEntry.objects.get(incident=incident, action="incident.unpublish")
    assert (entry.user, entry.changes) == (admin_user, {"published": [True, False]})
    assert admin_client.get(f"/incidents/{incident.pk}/").status_code == 404


def test_a_service_refusal_is_shown_on_the_form_and_nothing_is_saved(
    admin_client, world, monkeypatch
):
    draft = incident_create(title="Draft", body="x", started_at=T0)

    def refuse(**kwargs):
        raise ValidationError("The broker ate it.")

    monkeypatch.setattr(services, "incident_publish", refuse)
    data = _post_data(admin_client.get(_url(Incident, "change", draft.pk)))
    data.update(published="on", title="Renamed")
    response = admin_client.post(_url(Incident, "change", draft.pk), data)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.non_field_errors() == ["The broker ate it."]
    assert form["title"].value() == "Renamed"  # what the operator typed is still there
    draft.refresh_from_db()
    assert (draft.title, draft.published) == ("Draft", False)


def test_a_refusal_naming_a_field_is_shown_on_that_field(admin_client, world):
    data = {
        "title": "Upgrade",
        "kind": "maintenance",
        "status": "scheduled",
        "impact": "maintenance",
        "source": "manual",
        "body": "We upgrade the bus.",
        **_split("scheduled_for", T0 + 90 * M),
        **_split("scheduled_until", T0 + 60 * M),
        **{f"{n}_{i}": "" for n in ("started_at", "detected_at") for i in (0, 1)},
        "affected_components-TOTAL_FORMS": "0",
        "affected_components-INITIAL_FORMS": "0",
        "shard_impacts-TOTAL_FORMS": "0",
        "shard_impacts-INITIAL_FORMS": "0",
    }
    response = admin_client.post(_url(Incident, "add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["scheduled_until"] == [
        "The maintenance ends (2026-01-05 11:00:00 UTC) before it begins (2026-01-05 11:30:00 UTC)."
    ]
    assert not Incident.objects.filter(title="Upgrade").exists()


def test_a_start_after_the_resolution_is_a_form_error_not_a_500(admin_client, world, committed):
    incident = world["incident"]
    with committed():
        services.incident_post_update(
            incident=incident, status="resolved", body="ok", at=T0 + 30 * M
        )
    data = _post_data(admin_client.get(_url(Incident, "change", incident.pk)))
    data.update(_split("started_at", T0 + 60 * M))
    response = admin_client.post(_url(Incident, "change", incident.pk), data)
    assert response.status_code == 200
    assert "it cannot start later" in response.content.decode()


def test_deleting_an_incident_counts_its_derived_rows(admin_client, world):
    incident = world["incident"]
    page = admin_client.get(_url(Incident, "delete", incident.pk)).content.decode()
    assert "2 affected-tailnet rows" in page
    assert "permission" not in page  # the derived rows need no delete permission
    response = admin_client.post(_url(Incident, "delete", incident.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not TailnetImpact.objects.exists()
    assert not ShardImpact.objects.exists()


# --- Tailnets and placements -----------------------------------------------------------


def test_adding_a_tailnet_places_it(admin_client, world):
    data = {
        "slug": "initech",
        "display_name": "initech.com",
        "shard": world["euw1"].pk,
        **_split("created_at", T0),
    }
    response = admin_client.post(_url(Tailnet, "add"), data)
    assert response.status_code == 302
    placement = Placement.objects.get(tailnet__slug="initech")
    assert (placement.shard, placement.starts_at, placement.ends_at) == (world["euw1"], T0, None)


def test_tailnets_cannot_be_deleted(admin_client, world):
    assert admin_client.get(_url(Tailnet, "delete", world["acme"].pk)).status_code == 403


@pytest.mark.parametrize("model", [Placement, TailnetImpact], ids=lambda m: m.__name__)
def test_big_lists_search_by_exact_tailnet_slug(admin_client, world, model):
    url = _url(model, "changelist")
    page = admin_client.get(url + "?q=ACME").content.decode()
    assert ">acme<" in page
    assert ">evil<" not in page
    assert ">acme<" not in admin_client.get(url + "?q=acm").content.decode()


def test_the_placement_admin_offers_no_add_change_or_delete(admin_client, world):
    """Placements are derived from the fleet event log: the admin only shows them."""
    placement = world["acme"].placements.get()
    changelist = admin_client.get(_url(Placement, "changelist")).content.decode()
    assert "Derived from the fleet event log: read-only." in changelist
    assert _url(Placement, "add") not in changelist
    assert 'name="action"' not in changelist  # no bulk delete either
    assert admin_client.get(_url(Placement, "add")).status_code == 403
    assert admin_client.get(_url(Placement, "delete", placement.pk)).status_code == 403

    page = admin_client.get(_url(Placement, "change", placement.pk)).content.decode()
    assert 'name="_save"' not in page
    assert "Derived from the fleet event log" in page
    data = {"shard": world["use2"].pk, **_split("starts_at", T0)}
    assert admin_client.post(_url(Placement, "change", placement.pk), data).status_code == 403
    placement.refresh_from_db()
    assert (placement.shard, placement.starts_at) == (world["use1"], T0 - 30 * M)


def test_a_tailnets_placements_are_listed_read_only(admin_client, world):
    page = admin_client.get(_url(Tailnet, "change", world["acme"].pk)).content.decode()
    assert "placements-TOTAL_FORMS" not in page  # no inline formset to edit them
    assert 'name="display_name"' in page  # the name is the one thing typed here


def test_the_placement_list_shows_current_placements(admin_client, world, committed):
    with committed():
        tailnet_migrate(tailnet=world["acme"], to_shard="use2", at=T0 + 10 * M)
    page = admin_client.get(_url(Placement, "changelist") + "?current=yes").content.decode()
    assert "— current —" in page
    assert page.count('alt="True"') == 3  # acme on use2, globex, evil


def test_a_shard_with_history_cannot_be_deleted(admin_client, world):
    assert admin_client.get(_url(Shard, "delete", world["use1"].pk)).status_code == 403
    empty = Shard.objects.create(
        slug="aps1", region="ap-south", public_name="AP South 1", component=world["us"]
    )
    assert admin_client.get(_url(Shard, "delete", empty.pk)).status_code == 200


# --- Standalone windows and updates go through the services ----------------------------


def test_adding_a_window_on_its_own_page_uses_the_service(admin_client, world, committed):
    incident = world["incident"]
    data = {
        "incident": incident.pk,
        "shard": world["use2"].pk,
        "level": "partial",
        **_split("starts_at", T0),
        **_split("ends_at", T0 + 2 * M),
    }
    with committed():
        response = admin_client.post(_url(ShardImpact, "add"), data)
    assert response.status_code == 302
    assert TailnetImpact.objects.get(incident=incident, tailnet=world["globex"]).seconds == 120

    data.update(_split("starts_at", T0 + M))
    response = admin_client.post(_url(ShardImpact, "add"), data)
    assert response.status_code == 200
    assert "Impact windows on shard &#x27;use2&#x27; overlap" in response.content.decode()


def test_adding_an_update_on_its_own_page_uses_the_service(admin_client, world):
    incident = world["incident"]
    data = {"incident": incident.pk, "status": "identified", "body": "Found it."}
    assert admin_client.post(_url(IncidentUpdate, "add"), data).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "identified"


# --- Query counts ----------------------------------------------------------------------


def _count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_incident_list_does_not_grow_with_the_incidents(
    admin_client, world, committed, django_assert_max_num_queries
):
    url = _url(Incident, "changelist")
    one = _count_queries(admin_client, url)
    for i in range(19):
        _outage(committed, ["use1", "use2"], T0 + i * 60 * M, T0 + (i * 60 + 5) * M, title=f"#{i}")
    assert Incident.objects.count() == 20
    with django_assert_max_num_queries(one):
        page = admin_client.get(url)
    assert page.content.decode().count('class="action-select"') == 20


def test_the_incident_page_does_not_grow_with_its_tailnets(
    admin_client, world, committed, django_assert_max_num_queries
):
    small = _outage(committed, ["use2"], T0, T0 + 5 * M, title="small")
    one = _count_queries(admin_client, _url(Incident, "change", small.pk))

    for i in range(30):
        tailnet_create(slug=f"t{i}", display_name=f"t{i}.example", shard="euw1", at=T0 - M)
    big = _outage(committed, ["use1", "use2", "euw1"], T0, T0 + 5 * M, title="big")
    for i in range(3):
        services.incident_post_update(incident=big, status="identified", body=f"Note {i}")
    IncidentComponent.objects.create(incident=big, component=world["eu"], status="major_outage")
    assert TailnetImpact.objects.filter(incident=big).count() == 33
    _count_queries(admin_client, _url(Incident, "change", big.pk))
    with django_assert_max_num_queries(one):
        admin_client.get(_url(Incident, "change", big.pk))


@pytest.mark.parametrize("model", [Tailnet, Placement, TailnetImpact], ids=lambda m: m.__name__)
def test_big_lists_do_not_grow_with_their_rows(
    admin_client, world, committed, django_assert_max_num_queries, model
):
    url = _url(model, "changelist")
    one = _count_queries(admin_client, url)
    for i in range(20):
        tailnet_create(slug=f"t{i}", display_name=f"t{i}.example", shard="use1", at=T0 - M)
    with committed():
        services.tailnet_impacts_recompute(incident_id=world["incident"].pk)
    with django_assert_max_num_queries(one):
        admin_client.get(url)
