from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError

from accounts.models import User
from lists.models import Item, List
from superlists.tests.base import SuperlistsTestCase


class ListModelTest(SuperlistsTestCase):
    def test_list_ids_are_unguessable_and_distinct(self):
        first, second = List.objects.create(), List.objects.create()
        self.assertNotEqual(first.id, second.id)
        self.assertGreaterEqual(len(first.id), 16)

    def test_get_absolute_url(self):
        our_list = List.objects.create()
        self.assertEqual(our_list.get_absolute_url(), f"/lists/{our_list.id}/")

    def test_anonymous_list_can_be_seen_by_anyone(self):
        our_list = self.make_list("a")
        self.assertTrue(our_list.can_be_seen_by(self.stranger))

    def test_owned_list_is_seen_by_owner_and_sharees_only(self):
        our_list = self.make_list("a", owner=self.edith, shared_with=[self.oni])
        self.assertTrue(our_list.can_be_seen_by(self.edith))
        self.assertTrue(our_list.can_be_seen_by(self.oni))
        self.assertFalse(our_list.can_be_seen_by(self.stranger))

    def test_only_the_owner_owns_a_list(self):
        anonymous = self.make_list("a")
        edith_own = self.make_list("b", owner=self.edith, shared_with=[self.oni])
        self.assertTrue(edith_own.is_owned_by(self.edith))
        self.assertFalse(edith_own.is_owned_by(self.oni))
        self.assertFalse(edith_own.is_owned_by(AnonymousUser()))
        self.assertFalse(anonymous.is_owned_by(AnonymousUser()))
        self.assertFalse(anonymous.is_owned_by(self.edith))

    def test_get_with_item_rows_loads_list_owner_and_items_in_one_query(self):
        ours = self.make_list("first", "second", owner=self.edith)
        Item.objects.filter(text="second").update(done=True)
        with self.assertNumQueries(1):
            found, rows = List.objects.get_with_item_rows(ours.id)
            self.assertEqual(found, ours)
            self.assertEqual(found.owner.email, "edith@example.com")
        first, second = ours.item_set.order_by("id")
        self.assertEqual(rows, [(first.id, "first", False), (second.id, "second", True)])

    def test_get_with_item_rows_of_an_anonymous_list_without_items(self):
        ours = List.objects.create()
        with self.assertNumQueries(1):
            found, rows = List.objects.get_with_item_rows(ours.id)
            self.assertIsNone(found.owner)
        self.assertEqual(rows, [])
        self.assertEqual(found.created_at, ours.created_at)  # unloaded fields load when asked

    def test_get_with_item_rows_of_no_such_list(self):
        with self.assertRaises(List.DoesNotExist):
            List.objects.get_with_item_rows("nonexistent")


class ItemModelTest(SuperlistsTestCase):
    def test_items_keep_their_order(self):
        our_list = self.make_list("first", "second", "third")
        self.assertEqual([i.text for i in our_list.item_set.all()], ["first", "second", "third"])

    def test_duplicate_text_in_one_list_is_refused_by_the_database(self):
        our_list = self.make_list("bla")
        with self.assertRaises(IntegrityError):
            Item.objects.create(list=our_list, text="bla")

    def test_same_text_in_two_lists_is_fine(self):
        self.make_list("bla")
        self.make_list("bla")
        self.assertEqual(Item.objects.filter(text="bla").count(), 2)

    def test_deleting_owner_deletes_their_lists(self):
        self.make_list("a", owner=self.edith)
        User.objects.filter(pk=self.edith.pk).delete()
        self.assertEqual(List.objects.count(), 0)
