from django import forms
from django.db import IntegrityError, transaction

from lists.models import ITEM_MAX_LENGTH, Item

EMPTY_ITEM_ERROR = "You can't have an empty list item"
DUPLICATE_ITEM_ERROR = "You've already got this in your list"
TOO_LONG_ITEM_ERROR = f"That item is too long: keep it under {ITEM_MAX_LENGTH} characters"
INVALID_SHAREE_ERROR = "Enter the email address of the person to share with"


class ItemForm(forms.Form):
    """The one box on the home page and on every list page."""

    text = forms.CharField(
        max_length=ITEM_MAX_LENGTH,
        error_messages={"required": EMPTY_ITEM_ERROR, "max_length": TOO_LONG_ITEM_ERROR},
    )

    def __init__(self, *args, for_list=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.for_list = for_list

    def clean_text(self):
        text = self.cleaned_data["text"]
        if self.for_list is not None and self.for_list.item_set.filter(text=text).exists():
            raise forms.ValidationError(DUPLICATE_ITEM_ERROR)
        return text

    def save(self, for_list):
        """Add the item; a duplicate that slipped past clean() by a race becomes a form error."""
        try:
            with transaction.atomic():
                return Item.objects.create(list=for_list, text=self.cleaned_data["text"])
        except IntegrityError:
            self.add_error("text", DUPLICATE_ITEM_ERROR)
            return None


class ShareForm(forms.Form):
    sharee = forms.EmailField(
        # The user table's column: EmailValidator alone lets 320 characters through.
        max_length=254,
        error_messages={
            "required": INVALID_SHAREE_ERROR,
            "invalid": INVALID_SHAREE_ERROR,
            "max_length": INVALID_SHAREE_ERROR,
        },
    )
