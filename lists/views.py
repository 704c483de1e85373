from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import normalize_email
from lists.first_visit import FirstVisitPage, is_first_visit
from lists.forms import ItemForm, ShareForm
from lists.models import Item, List
from lists.rows import item_rows

_first_visit_home = FirstVisitPage("lists/home.html", lambda: {"form": ItemForm()})


@require_GET
def home_page(request):
    if is_first_visit(request):
        return _first_visit_home.response(request)
    return render(request, "lists/home.html", {"form": ItemForm()})


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


def _list_page_or_404(request, list_id):
    """The list, its owner and its item rows, in one query, if this visitor may see them."""
    # The busiest page: building the ORM queries this replaces cost more than rendering it.
    try:
        our_list, items = List.objects.get_with_item_rows(list_id)
    except List.DoesNotExist:
        raise Http404("No such list") from None
    return _only_if_visible(request, our_list), items


@require_http_methods(["GET", "POST"])
def view_list(request, list_id):
    our_list, items = _list_page_or_404(request, list_id)
    form = ItemForm(for_list=our_list)
    status = 200
    if request.method == "POST":
        form = ItemForm(data=request.POST, for_list=our_list)
        if form.is_valid() and form.save(for_list=our_list):
            return redirect(our_list)
        status = 400
    return _render_list(request, our_list, items, form, status=status)


def _render_list(request, our_list, items, form, share_form=None, status=200):
    is_owner = our_list.is_owned_by(request.user)
    if is_owner and share_form is None:
        share_form = ShareForm()  # only the owner is shown the share form
    list_path = our_list.get_absolute_url()
    return render(
        request,
        "lists/list.html",
        {
            "list": our_list,
            "title": items[0][1] if items else "To-Do list",
            "list_path": list_path,
            # Items are plain (id, text, done) tuples, rendered in one pass (lists/rows.py).
            "rows": item_rows(items, list_path),
            "sharees": list(our_list.shared_with.all()) if our_list.owner_id else [],
            "is_owner": is_owner,
            "form": form,
            "share_form": share_form,
        },
        status=status,
    )


@require_POST
def share_list(request, list_id):
    our_list, items = _list_page_or_404(request, list_id)
    if not our_list.is_owned_by(request.user):
        raise PermissionDenied("Only the owner can share a list")
    share_form = ShareForm(data=request.POST)
    if not share_form.is_valid():
        form = ItemForm(for_list=our_list)
        return _render_list(request, our_list, items, form, share_form, 400)
    email = normalize_email(share_form.cleaned_data["sharee"])
    if email != our_list.owner.email:
        sharee, _ = get_user_model().objects.get_or_create(email=email)
        our_list.shared_with.add(sharee)
    messages.success(request, f"Shared with {email}")
    return redirect(our_list)


def _item_or_404(request, list_id, item_id):
    item = get_object_or_404(Item.objects.select_related("list"), list_id=list_id, id=item_id)
    _only_if_visible(request, item.list)
    return item


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
