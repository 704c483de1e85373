import io

from django.core import mail
from django.core.management import call_command

from accounts.models import LoginToken, User
from lists.models import Item, List
from superlists.tests.base import EDITH, SuperlistsTestCase

BOSS = "boss@example.com"


class CreateSuperuserTest(SuperlistsTestCase):
    def test_createsuperuser_needs_only_an_email(self):
        # It crashed: 'Manager' object has no attribute 'get_by_natural_key'.
        call_command(
            "createsuperuser", email="Boss@Example.com", interactive=False, stdout=io.StringIO()
        )
        boss = User.objects.get()
        self.assertEqual(boss.email, BOSS)
        self.assertTrue(boss.is_staff)
        self.assertTrue(boss.is_superuser)

    def test_an_address_already_taken_is_refused_with_a_sentence(self):
        User.objects.create(email=BOSS)
        with self.assertRaisesMessage(Exception, "That email is already taken"):
            call_command("createsuperuser", email=BOSS, interactive=False, stdout=io.StringIO())


class AdminTest(SuperlistsTestCase):
    def setUp(self):
        self.boss = User.objects.create_superuser(BOSS)

    def test_staff_reach_the_admin_by_the_emailed_link(self):
        login_page = self.client.get("/admin/", follow=True)
        self.assertContains(login_page, 'name="next" value="/admin/"')
        self.assertNotContains(login_page, "password")
        self.ask_for_login_email(BOSS, next="/admin/")
        url, _ = self.login_link_in(self.assert_one_login_email_to(BOSS))
        response = self.client.get(url, follow=True)
        self.assertEqual(response.redirect_chain[-1][0], "/admin/")
        for section in ("Lists", "Items", "Users", "Login tokens"):
            self.assertContains(response, section)

    def test_every_admin_list_page_opens(self):
        owned = List.objects.create(owner=self.boss)
        Item.objects.create(list=owned, text="an item")
        LoginToken.objects.issue(EDITH)
        self.client.force_login(self.boss)
        for page in ("lists/list", "lists/item", "accounts/user", "accounts/logintoken"):
            response = self.client.get(f"/admin/{page}/")
            self.assertEqual(response.status_code, 200, page)
        self.assertContains(self.client.get(f"/admin/lists/list/{owned.pk}/change/"), "an item")

    def test_login_tokens_are_read_only(self):
        row, _ = LoginToken.objects.issue(EDITH)
        self.client.force_login(self.boss)
        self.assertEqual(self.client.get("/admin/accounts/logintoken/add/").status_code, 403)
        page = self.client.get(f"/admin/accounts/logintoken/{row.pk}/change/")
        self.assertContains(page, EDITH)
        self.assertNotContains(page, row.token_hash)
        self.assertNotContains(page, 'name="_save"')
        self.client.post(f"/admin/accounts/logintoken/{row.pk}/change/", {"email": "x@x.com"})
        self.assertEqual(LoginToken.objects.get().email, EDITH)

    def test_other_users_get_a_styled_403(self):
        self.client.force_login(User.objects.create(email=EDITH))
        response = self.client.get("/admin/", follow=True)
        self.assertContains(response, "id_error_page", status_code=403)
        self.assertEqual(len(mail.outbox), 0)
