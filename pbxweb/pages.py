"""What every area's page views share: answer an htmx request with the fragment and a plain one with the
page, read a form into the shape the services take, and show a service's refusal next to its fields."""

from flask import make_response, render_template, request

from .validation import ServiceError


def is_fragment() -> bool:
    """An htmx request that wants a piece of the page (a boosted one wants the page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")


def page_or_fragment(page_template: str, fragment_template: str, **context):
    """One view, two answers: the whole page, or for htmx only the part that changed. Caches keep them apart."""
    response = make_response(render_template(fragment_template if is_fragment() else page_template, **context))
    response.headers["Vary"] = "HX-Request"
    return response


def form_data(fields, checkboxes=()) -> dict:
    """The submitted form as a service takes it: only `fields` that were sent (an unchecked box is not sent,
    so each of `checkboxes` is true or false), text as typed (the services strip and check it)."""
    data = {name: request.form[name] for name in fields if name in request.form}
    for name in checkboxes:
        data[name] = name in request.form
    return data


def refused(template: str, error: ServiceError, **context):
    """The form again, each problem under its field (`errors`), with the service's status (400, 409)."""
    return render_template(template, errors=error.errors, **context), error.status


def closing(body: str = ""):
    """An htmx answer (out-of-band rows, say) that also closes the form's dialog once it is swapped in."""
    response = make_response(body)
    response.headers["HX-Trigger-After-Swap"] = "closePanel"
    return response


def listing_changed(response):
    """Tells the page's listing to load itself again (`hx-trigger="listingChanged from:body"`): after a create
    or delete its count, order and paging are the server's to say, not a row slipped in at the top."""
    response = make_response(response)
    response.headers["HX-Trigger"] = "listingChanged"
    return response
