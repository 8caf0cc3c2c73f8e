"""The public report form and its confirmation page. Thin: a form, a service, a query."""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_safe

from customers.access import member_tailnets

from . import queries, services
from .forms import ReportForm
from .models import Report, Via

# Said only to someone anonymous, whose report was not saved (a member's always is).
TOO_MANY = {
    "address": (
        "You have sent several reports in the last few minutes. This one was not saved. "
        "Please wait a few minutes before sending another."
    ),
    "tailnet": (
        "Many reports naming this tailnet came in over the last few minutes. This one was "
        "not saved. Please wait a few minutes before sending another, or sign in as a "
        "member of the tailnet to report it now."
    ),
}


@never_cache
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def report_form(request: HttpRequest) -> HttpResponse:
    # Anonymous (most reports): no memberships, and no query built to find none.
    memberships = list(member_tailnets(user=request.user)) if request.user.is_authenticated else []
    data = request.POST if request.method == "POST" else None
    form = ReportForm(data, memberships=memberships)
    status, limited = 200, None
    if form.is_bound and not form.is_valid():
        status = 400
    elif form.is_bound:
        report, limited = services.report_submit_limited(
            cleaned=form.cleaned_data,
            tailnet=form.member_tailnet,
            honeypot=form.is_bot,
            client_address=request.META.get("REMOTE_ADDR"),
            reporter=request.user,
            via=Via.FORM,
        )
        if report is not None:
            # 303: the browser GETs the confirmation, so reloading it never re-sends.
            done = HttpResponseRedirect(reverse("reports:thanks", args=[report.public_id]))
            done.status_code = 303
            return done
        assert limited is not None
        form.add_error(None, TOO_MANY[limited.by])
        status = 429
    form.describe_fields()
    context = {"form": form, "nav": "report", "memberships": memberships}
    response = render(request, "reports/form.html", context, status=status)
    if limited is not None:
        response["Retry-After"] = str(limited.wait)
    return response


@never_cache
@require_safe
def report_thanks(request: HttpRequest, public_id: str) -> HttpResponse:
    report = get_object_or_404(Report, public_id=public_id)
    answer = queries.report_answer(report=report, user=request.user, now=timezone.now())
    context = {"report": report, "answer": answer, "nav": "report"}
    return render(request, "reports/thanks.html", context)
