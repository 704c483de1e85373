from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import get_template
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import normalize_email
from lists.forms import ItemForm, ShareForm
from lists.models import Item, List
from superlists.templating import CsrfInput

# A first-time visitor (no cookies, no query string) is anonymous, has no messages and always
# gets the same home page but for its CSRF token: render that page once per process and put
# each visitor's own token into it. Anyone else gets the page rendered as usual.
FIRST_VISIT_TOKEN = "csrfTokenOfTheFirstVisitHomePage"
_first_visit_page = {}


@require_GET
def home_page(request):
    if request.COOKIES or request.GET:
        return render(request, "lists/home.html", {"form": ItemForm()})
    if "html" not in _first_visit_page:
        # The context Django's render would build, but with our placeholder token in place
        # of the one the csrf context processor would give this visitor.
        page = get_template("lists/home.html")
        context = {"request": request}
        for processor in page.backend.template_context_processors:
            context.update(processor(request))
        context.update(csrf_input=CsrfInput(request, token=FIRST_VISIT_TOKEN), form=ItemForm())
        _first_visit_page["html"] = page.template.render(context)
    return HttpResponse(_first_visit_page["html"].replace(FIRST_VISIT_TOKEN, get_token(request)))


@require_POST
def new_list(request):
    form = ItemForm(data=request.POST)
    if not form.is_valid():
        return render(request, "lists/home.html", {"form": form}, status=400)
    owner = request.user if request.user.is_authenticated else None
    with transaction.atomic():
        new = List.objects.create(owner=owner)
        form.save(for_list=new)
    return redirect(new)


def _only_if_visible(request, found):
    """The list if this visitor may see it; a stranger cannot tell it exists."""
    if not found.can_be_seen_by(request.user):
        raise Http404("No such list")
    return found


def _visible_list_or_404(request, list_id):
    found = get_object_or_404(List.objects.select_related("owner"), id=list_id)
    return _only_if_visible(request, found)


@require_http_methods(["GET", "POST"])
def view_list(request, list_id):
    # The busiest page: the list and its items come in one query (see get_with_item_rows).
    try:
        our_list, items = List.objects.get_with_item_rows(list_id)
    except List.DoesNotExist:
        raise Http404("No such list") from None
    _only_if_visible(request, our_list)
    form = ItemForm(for_list=our_list)
    status = 200
    if request.method == "POST":
        form = ItemForm(data=request.POST, for_list=our_list)
        if form.is_valid() and form.save(for_list=our_list):
            return redirect(our_list)
        status = 400
    return _render_list(request, our_list, items, form, status=status)


def _render_list(request, our_list, items, form, share_form=None, status=200):
    # Items are plain (id, text, done) tuples, rendered in one pass by lists/rows.py.
    is_owner = our_list.owner_id is not None and our_list.owner_id == request.user.pk
    if is_owner and share_form is None:
        share_form = ShareForm()  # only the owner is shown the share form
    return render(
        request,
        "lists/list.html",
        {
            "list": our_list,
            "title": items[0][1] if items else "To-Do list",
            "list_path": our_list.get_absolute_url(),
            "items": items,
            "sharees": list(our_list.shared_with.all()) if our_list.owner_id else [],
            "is_owner": is_owner,
            "form": form,
            "share_form": share_form,
        },
        status=status,
    )


@require_POST
def share_list(request, list_id):
    our_list = _visible_list_or_404(request, list_id)
    if our_list.owner_id is None or our_list.owner_id != request.user.pk:
        raise PermissionDenied("Only the owner can share a list")
    share_form = ShareForm(data=request.POST)
    if not share_form.is_valid():
        form = ItemForm(for_list=our_list)
        return _render_list(request, our_list, our_list.item_rows(), form, share_form, 400)
    email = normalize_email(share_form.cleaned_data["sharee"])
    if email != our_list.owner.email:
        sharee, _ = get_user_model().objects.get_or_create(email=email)
        our_list.shared_with.add(sharee)
    messages.success(request, f"Shared with {email}")
    return redirect(our_list)


def _item_or_404(request, list_id, item_id):
    our_list = _visible_list_or_404(request, list_id)
    return get_object_or_404(Item, list=our_list, id=item_id)


def _wants_json(request):
    return request.headers.get("X-Requested-With") == "fetch"


@require_POST
def toggle_item(request, list_id, item_id):
    item = _item_or_404(request, list_id, item_id)
    item.done = not item.done
    item.save(update_fields=["done"])
    if _wants_json(request):
        return HttpResponse(status=204)
    return redirect(item.list)


@require_POST
def delete_item(request, list_id, item_id):
    item = _item_or_404(request, list_id, item_id)
    our_list = item.list
    item.delete()
    if _wants_json(request):
        return HttpResponse(status=204)
    return redirect(our_list)


@require_GET
def my_lists(request, email):
    if not request.user.is_authenticated:
        messages.warning(request, "Log in to see your lists.")
        return redirect("home")
    if request.user.email.lower() != email.lower():
        raise Http404("Not your lists")
    owned, shared = List.objects.my_lists_rows(request.user)
    return render(request, "lists/my_lists.html", {"owned": owned, "shared": shared})
