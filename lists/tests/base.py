from django.test import TestCase

from accounts.models import User
from lists.models import Item, List


class ListsTestCase(TestCase):
    """The cast: Edith owns lists, Oni is her friend, Stranger is nobody to them."""

    def setUp(self):
        self.edith = User.objects.create(email="edith@example.com")
        self.oni = User.objects.create(email="oni@example.com")
        self.stranger = User.objects.create(email="stranger@example.com")

    def make_list(self, *texts, owner=None):
        new = List.objects.create(owner=owner)
        for text in texts:
            Item.objects.create(list=new, text=text)
        return new
