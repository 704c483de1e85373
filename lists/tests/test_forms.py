from unittest import mock

from django.db import IntegrityError

from lists.forms import (
    DUPLICATE_ITEM_ERROR,
    EMPTY_ITEM_ERROR,
    TOO_LONG_ITEM_ERROR,
    ItemForm,
    ShareForm,
)
from lists.models import ITEM_MAX_LENGTH, Item
from superlists.tests.base import SuperlistsTestCase


class ItemFormTest(SuperlistsTestCase):
    def test_blank_and_whitespace_items_are_refused(self):
        for text in ("", "   ", "\n\t"):
            form = ItemForm(data={"text": text})
            self.assertFalse(form.is_valid())
            self.assertEqual(form.errors["text"], [EMPTY_ITEM_ERROR])

    def test_missing_field_is_the_empty_error(self):
        form = ItemForm(data={})
        self.assertEqual(form.errors["text"], [EMPTY_ITEM_ERROR])

    def test_overlong_item_is_refused(self):
        form = ItemForm(data={"text": "x" * (ITEM_MAX_LENGTH + 1)})
        self.assertEqual(form.errors["text"], [TOO_LONG_ITEM_ERROR])

    def test_item_of_maximum_length_is_fine(self):
        self.assertTrue(ItemForm(data={"text": "x" * ITEM_MAX_LENGTH}).is_valid())

    def test_duplicate_in_the_same_list_is_refused(self):
        our_list = self.make_list("milk")
        form = ItemForm(data={"text": "milk"}, for_list=our_list)
        self.assertEqual(form.errors["text"], [DUPLICATE_ITEM_ERROR])

    def test_save_adds_item(self):
        our_list = self.make_list()
        form = ItemForm(data={"text": "eggs"}, for_list=our_list)
        self.assertTrue(form.is_valid())
        item = form.save(for_list=our_list)
        self.assertEqual(Item.objects.get(), item)

    def test_duplicate_that_races_past_validation_becomes_a_form_error(self):
        our_list = self.make_list()
        form = ItemForm(data={"text": "eggs"}, for_list=our_list)
        self.assertTrue(form.is_valid())
        # Another worker saves the same text between our check and our insert.
        with mock.patch.object(Item.objects, "create", side_effect=IntegrityError):
            self.assertIsNone(form.save(for_list=our_list))
        self.assertEqual(form.errors["text"], [DUPLICATE_ITEM_ERROR])


class ShareFormTest(SuperlistsTestCase):
    def test_refuses_a_bad_address(self):
        for value in ("", "not-an-email", "a@"):
            self.assertFalse(ShareForm(data={"sharee": value}).is_valid())

    def test_accepts_an_address(self):
        self.assertTrue(ShareForm(data={"sharee": "oni@example.com"}).is_valid())
