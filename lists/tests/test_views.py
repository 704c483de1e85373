import html
import re

from django.test import Client
from markupsafe import escape  # the escaping the templates use

from accounts.forms import LoginEmailForm
from accounts.models import User
from lists.first_visit import PLACEHOLDER
from lists.forms import DUPLICATE_ITEM_ERROR, EMPTY_ITEM_ERROR, TOO_LONG_ITEM_ERROR
from lists.models import ITEM_MAX_LENGTH, Item, List
from superlists.tests.base import SuperlistsTestCase


class HomePageTest(SuperlistsTestCase):
    def test_home_page_shows_the_item_box(self):
        for response in (self.client.get("/"), self.client.get("/", {"q": "1"})):
            self.assertContains(response, "Start a new To-Do list")
            self.assertContains(response, 'name="text"')

    def test_first_visit_page_is_the_usual_page_with_the_visitors_own_token(self):
        first = Client(enforce_csrf_checks=True)
        cached = first.get("/")
        usual = Client().get("/", {"from": "a link"})  # a query string: rendered as usual
        token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
        strip = lambda response: token.sub("", response.content.decode())  # noqa: E731
        self.assertEqual(strip(cached), strip(usual).replace("/?from=a+link", "/"))
        self.assertNotIn(PLACEHOLDER, cached.content.decode())
        # The token in the page works with the cookie the visitor was given.
        posted = first.post(
            "/lists/new",
            {
                "text": "from a first visit",
                "csrfmiddlewaretoken": token.findall(cached.content.decode())[0],
            },
        )
        self.assertEqual(posted.status_code, 302)
        second = Client().get("/")
        self.assertNotEqual(
            token.findall(second.content.decode()), token.findall(cached.content.decode())
        )

    def test_logged_in_visitor_gets_their_own_home_page(self):
        self.client.force_login(self.edith)
        self.assertContains(self.client.get("/"), "Logged in as edith@example.com")

    def test_home_page_refuses_post(self):
        response = self.client.post("/", {"text": "x"})
        self.assertEqual(response.status_code, 405)


ITEM_FORM = re.compile(r'<form [^>]*id="id_item_form"[^>]*>')
ITEM_BOX = re.compile(r'<input [^>]*id="id_text"[^>]*>')
TABLE = re.compile(r'<table [^>]*id="id_list_table"[^>]*>(.*?)</table>', re.S)
BUTTON = re.compile(r"<button ([^>]*)>(.*?)</button>", re.S)


class ItemBoxTest(SuperlistsTestCase):
    """The book's conventions for the item box, on the home page and on a list's page."""

    def pages(self):
        ours = self.make_list("first")
        return {
            "home": self.client.get("/"),
            "home, not a first visit": self.client.get("/", {"again": "1"}),
            "home with its error": self.client.post("/lists/new", {"text": ""}),
            "list": self.client.get(f"/lists/{ours.id}/"),
            "list with its error": self.client.post(f"/lists/{ours.id}/", {"text": "first"}),
        }

    def test_box_is_required_and_the_form_lets_the_browser_check_it(self):
        for name, response in self.pages().items():
            with self.subTest(name):
                content = response.content.decode()
                self.assertRegex(ITEM_BOX.search(content)[0], r"\srequired[\s>]")
                self.assertNotIn("novalidate", ITEM_FORM.search(content)[0])


class NewListTest(SuperlistsTestCase):
    def test_creates_a_list_with_its_first_item_and_redirects_to_it(self):
        response = self.client.post("/lists/new", {"text": "Buy peacock feathers"})
        new = List.objects.get()
        self.assertRedirects(response, f"/lists/{new.id}/")
        self.assertEqual(new.item_set.get().text, "Buy peacock feathers")
        self.assertIsNone(new.owner)

    def test_two_visitors_get_two_lists(self):
        self.client.post("/lists/new", {"text": "a"})
        self.client.post("/lists/new", {"text": "a"})
        self.assertEqual(List.objects.count(), 2)

    def test_logged_in_visitor_owns_the_new_list(self):
        self.client.force_login(self.edith)
        self.client.post("/lists/new", {"text": "mine"})
        self.assertEqual(List.objects.get().owner, self.edith)

    def test_empty_item_shows_error_on_home_and_saves_nothing(self):
        response = self.client.post("/lists/new", {"text": ""})
        self.assertEqual(response.status_code, 400)
        self.assertContains(
            response,
            '<h1 class="display-6 my-4">Start a new To-Do list</h1>',
            html=False,
            status_code=400,
        )
        self.assertContains(response, escape(EMPTY_ITEM_ERROR), status_code=400)
        self.assertEqual(List.objects.count(), 0)

    def test_missing_field_is_a_form_error_not_a_500(self):
        response = self.client.post("/lists/new", {})
        self.assertContains(response, escape(EMPTY_ITEM_ERROR), status_code=400)

    def test_overlong_item_is_a_form_error(self):
        response = self.client.post("/lists/new", {"text": "x" * (ITEM_MAX_LENGTH + 1)})
        self.assertContains(response, escape(TOO_LONG_ITEM_ERROR), status_code=400)
        self.assertEqual(Item.objects.count(), 0)

    def test_get_is_not_allowed(self):
        self.assertEqual(self.client.get("/lists/new").status_code, 405)


class ViewListTest(SuperlistsTestCase):
    def test_every_form_on_the_page_shares_one_working_csrf_token(self):
        ours = self.make_list("first", owner=self.edith)
        edith = Client(enforce_csrf_checks=True)
        edith.force_login(self.edith)
        page = edith.get(f"/lists/{ours.id}/").content.decode()
        # Log out, new item, the rows' buttons, share: one token, not a fresh one per form.
        tokens = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        self.assertEqual(len(tokens), 4)
        self.assertEqual(len(set(tokens)), 1)
        posted = edith.post(
            f"/lists/{ours.id}/", {"text": "second", "csrfmiddlewaretoken": tokens[0]}
        )
        self.assertRedirects(posted, f"/lists/{ours.id}/")

    def test_shows_only_this_lists_items(self):
        ours = self.make_list("itemey 1", "itemey 2")
        self.make_list("other item")
        response = self.client.get(f"/lists/{ours.id}/")
        self.assertContains(response, 'id="id_list_table"')
        self.assertContains(response, "itemey 1")
        self.assertContains(response, "itemey 2")
        self.assertNotContains(response, "other item")

    def test_item_text_is_escaped(self):
        ours = self.make_list('<script>alert("x")</script> & co')
        response = self.client.get(f"/lists/{ours.id}/")
        self.assertNotContains(response, "<script>alert")
        self.assertContains(response, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co")

    def test_rows_are_numbered_and_done_items_marked(self):
        ours = self.make_list("first", "second")
        Item.objects.filter(text="second").update(done=True)
        content = self.client.get(f"/lists/{ours.id}/").content.decode()
        self.assertIn(">1:</td>", content)
        self.assertIn(">2:</td>", content)
        self.assertEqual(content.count('class="done"'), 1)
        self.assertEqual(content.count('aria-pressed="true"'), 1)

    def test_row_buttons_have_names_for_screen_readers_and_no_words_on_screen(self):
        ours = self.make_list("first", 'say "hi" & <go>')
        Item.objects.filter(text="first").update(done=True)
        table = TABLE.search(self.client.get(f"/lists/{ours.id}/").content.decode())[1]
        buttons = BUTTON.findall(table)
        # No text inside a button: Selenium's row.text, like the eye, reads only "N: text".
        self.assertEqual([inside for _, inside in buttons], [""] * 4)
        labels = [re.search(r'aria-label="([^"]*)"', attrs)[1] for attrs, _ in buttons]
        self.assertEqual(
            labels,
            [
                "Done: first",
                "Delete: first",
                "Done: say &quot;hi&quot; &amp; &lt;go&gt;",
                "Delete: say &quot;hi&quot; &amp; &lt;go&gt;",
            ],
        )
        pressed = [re.search(r'aria-pressed="(\w+)"', attrs) for attrs, _ in buttons]
        self.assertEqual([p and p[1] for p in pressed], ["true", None, "false", None])

    def test_post_adds_item_and_redirects(self):
        ours = self.make_list("first")
        response = self.client.post(f"/lists/{ours.id}/", {"text": "second"})
        self.assertRedirects(response, f"/lists/{ours.id}/")
        self.assertEqual([i.text for i in ours.item_set.all()], ["first", "second"])

    def test_empty_item_shows_error_and_keeps_the_list(self):
        ours = self.make_list("first")
        response = self.client.post(f"/lists/{ours.id}/", {"text": ""})
        self.assertContains(response, escape(EMPTY_ITEM_ERROR), status_code=400)
        self.assertContains(response, "first", status_code=400)
        self.assertEqual(Item.objects.count(), 1)

    def test_duplicate_item_shows_error(self):
        ours = self.make_list("textey")
        response = self.client.post(f"/lists/{ours.id}/", {"text": "textey"})
        self.assertContains(response, escape(DUPLICATE_ITEM_ERROR), status_code=400)
        self.assertEqual(Item.objects.count(), 1)

    def test_unknown_and_junk_ids_get_the_styled_404(self):
        for list_id in ("nope", "0" * 40, "%00", "a%00b", "%C3%A9", "' OR 1=1 --"):
            for method in ("get", "post"):
                response = getattr(self.client, method)(f"/lists/{list_id}/")
                self.assertEqual(response.status_code, 404, (method, list_id))
                self.assertContains(response, "id_error_page", status_code=404)
            for action in ("share", "items/1/toggle", "items/1/delete"):
                response = self.client.post(f"/lists/{list_id}/{action}")
                self.assertEqual(response.status_code, 404, (action, list_id))

    def test_who_sees_what(self):
        # The cast's rule (SuperlistsTestCase): a list made without logging in is anyone's;
        # Edith's list is hers and Oni's, whom she shared it with; only she is shown sharing.
        anyones = self.make_list("anyone's")
        ediths = self.make_list("Edith's", owner=self.edith, shared_with=[self.oni])
        expected = {
            "nobody logged in": (None, {anyones: 200, ediths: 404}),
            "Edith": (self.edith, {anyones: 200, ediths: 200}),
            "Oni": (self.oni, {anyones: 200, ediths: 200}),
            "the stranger": (self.stranger, {anyones: 200, ediths: 404}),
        }
        for name, (person, statuses) in expected.items():
            self.client.logout()
            if person:
                self.client.force_login(person)
            for shown, status in statuses.items():
                response = self.client.get(shown.get_absolute_url())
                self.assertEqual(response.status_code, status, (name, str(shown)))
                can_share = b'id="id_share_form"' in response.content
                self.assertEqual(can_share, person == self.edith and shown == ediths, name)

    def test_owned_list_shows_owner(self):
        ours = self.make_list("x", owner=self.edith)
        self.client.force_login(self.edith)
        self.assertContains(self.client.get(f"/lists/{ours.id}/"), "List owner: ")
        self.assertContains(self.client.get(f"/lists/{ours.id}/"), "edith@example.com")

    def test_strangers_get_404_for_owned_list_and_cannot_add(self):
        ours = self.make_list("secret", owner=self.edith)
        for who in (None, self.stranger):
            self.client.logout()
            if who:
                self.client.force_login(who)
            self.assertEqual(self.client.get(f"/lists/{ours.id}/").status_code, 404)
            response = self.client.post(f"/lists/{ours.id}/", {"text": "sneaky"})
            self.assertEqual(response.status_code, 404)
            self.assertNotContains(response, "secret", status_code=404)
        self.assertEqual(Item.objects.count(), 1)

    def test_sharee_can_see_and_add(self):
        ours = self.make_list("first", owner=self.edith, shared_with=[self.oni])
        self.client.force_login(self.oni)
        self.assertContains(self.client.get(f"/lists/{ours.id}/"), "first")
        self.client.post(f"/lists/{ours.id}/", {"text": "from oni"})
        self.assertEqual(ours.item_set.count(), 2)

    def test_anonymous_list_is_open_to_anyone_with_the_url(self):
        ours = self.make_list("public")
        self.client.force_login(self.stranger)
        self.assertContains(self.client.get(f"/lists/{ours.id}/"), "public")

    def test_other_methods_are_refused(self):
        ours = self.make_list("x")
        self.assertEqual(self.client.put(f"/lists/{ours.id}/").status_code, 405)
        self.assertEqual(self.client.delete(f"/lists/{ours.id}/").status_code, 405)

    def test_query_count_does_not_grow_with_items(self):
        self.client.force_login(self.edith)
        one = self.make_list("only", owner=self.edith)
        many = self.make_list(
            *[f"item {n}" for n in range(50)], owner=self.edith, shared_with=[self.oni]
        )
        self.client.get(f"/lists/{one.id}/")  # warm the session
        # Session, user, the list with its items, its sharees.
        with self.assertNumQueries(4):
            self.client.get(f"/lists/{one.id}/")
        with self.assertNumQueries(4):
            self.client.get(f"/lists/{many.id}/")


class ShareListTest(SuperlistsTestCase):
    def test_owner_can_share_list(self):
        ours = self.make_list("x", owner=self.edith)
        self.client.force_login(self.edith)
        response = self.client.post(f"/lists/{ours.id}/share", {"sharee": "oni@example.com"})
        self.assertRedirects(response, f"/lists/{ours.id}/", fetch_redirect_response=False)
        self.assertIn(self.oni, ours.shared_with.all())
        page = self.client.get(f"/lists/{ours.id}/")
        self.assertContains(page, "Shared with")
        self.assertContains(page, "oni@example.com")
        self.assertContains(page, 'placeholder="your-friend@example.com"')

    def test_sharing_with_someone_new_makes_the_list_theirs_when_they_log_in(self):
        ours = self.make_list("for newbie", owner=self.edith)
        self.client.force_login(self.edith)
        self.client.post(f"/lists/{ours.id}/share", {"sharee": "Newbie@Example.com"})
        newbie = ours.shared_with.get()
        self.assertEqual(newbie.email, "newbie@example.com")
        self.client.force_login(newbie)
        self.assertContains(self.client.get("/lists/users/newbie@example.com/"), "for newbie")

    def test_an_address_too_long_for_the_database_is_a_form_error(self):
        # EmailValidator takes up to 320 characters; the column holds 254 (a 500 on PostgreSQL).
        ours = self.make_list("x", owner=self.edith)
        self.client.force_login(self.edith)
        sharee = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".com"
        self.assertGreater(len(sharee), 254)
        response = self.client.post(f"/lists/{ours.id}/share", {"sharee": sharee})
        self.assertContains(response, "id_sharee_error", status_code=400)
        self.assertEqual(ours.shared_with.count(), 0)

    def test_invalid_address_is_a_form_error(self):
        ours = self.make_list("x", owner=self.edith)
        self.client.force_login(self.edith)
        for sharee in ("", "nope", None):
            data = {} if sharee is None else {"sharee": sharee}
            response = self.client.post(f"/lists/{ours.id}/share", data)
            self.assertContains(response, "id_sharee_error", status_code=400)
        self.assertEqual(ours.shared_with.count(), 0)

    def test_only_the_owner_can_share(self):
        ours = self.make_list("x", owner=self.edith, shared_with=[self.oni])
        anonymous_list = self.make_list("anon")
        cases = [(self.oni, ours, 403), (self.stranger, ours, 404), (None, ours, 404)]
        cases.append((self.edith, anonymous_list, 403))
        for who, target, status in cases:
            self.client.logout()
            if who:
                self.client.force_login(who)
            response = self.client.post(f"/lists/{target.id}/share", {"sharee": "x@example.com"})
            self.assertEqual(response.status_code, status, who)
            self.assertContains(response, "id_error_page", status_code=status)
        self.assertEqual(list(ours.shared_with.all()), [self.oni])
        self.assertEqual(anonymous_list.shared_with.count(), 0)

    def test_get_is_not_allowed(self):
        ours = self.make_list("x", owner=self.edith)
        self.client.force_login(self.edith)
        self.assertEqual(self.client.get(f"/lists/{ours.id}/share").status_code, 405)


class ItemActionsTest(SuperlistsTestCase):
    def test_toggle_marks_done_and_undone(self):
        ours = self.make_list("x")
        item = ours.item_set.get()
        url = f"/lists/{ours.id}/items/{item.id}/toggle"
        self.assertRedirects(self.client.post(url), f"/lists/{ours.id}/")
        item.refresh_from_db()
        self.assertTrue(item.done)
        self.assertContains(self.client.get(f"/lists/{ours.id}/"), 'class="done"')
        self.client.post(url)
        item.refresh_from_db()
        self.assertFalse(item.done)

    def test_delete_removes_item(self):
        ours = self.make_list("x", "y")
        item = ours.item_set.get(text="x")
        self.client.post(f"/lists/{ours.id}/items/{item.id}/delete")
        self.assertEqual([i.text for i in ours.item_set.all()], ["y"])

    def test_fetch_requests_get_204(self):
        ours = self.make_list("x")
        item = ours.item_set.get()
        url = f"/lists/{ours.id}/items/{item.id}/toggle"
        response = self.client.post(url, headers={"X-Requested-With": "fetch"})
        self.assertEqual(response.status_code, 204)

    def test_get_changes_nothing(self):
        ours = self.make_list("x")
        item = ours.item_set.get()
        for action in ("toggle", "delete"):
            response = self.client.get(f"/lists/{ours.id}/items/{item.id}/{action}")
            self.assertEqual(response.status_code, 405)
        item.refresh_from_db()
        self.assertFalse(item.done)

    def test_strangers_cannot_touch_owned_items(self):
        ours = self.make_list("x", owner=self.edith)
        item = ours.item_set.get()
        self.client.force_login(self.stranger)
        for action in ("toggle", "delete"):
            response = self.client.post(f"/lists/{ours.id}/items/{item.id}/{action}")
            self.assertEqual(response.status_code, 404)
        item.refresh_from_db()
        self.assertFalse(item.done)

    def test_item_from_another_list_is_404(self):
        ours = self.make_list("x")
        other = self.make_list("y")
        item = other.item_set.get()
        response = self.client.post(f"/lists/{ours.id}/items/{item.id}/delete")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(Item.objects.count(), 2)

    def test_junk_item_ids_are_404(self):
        ours = self.make_list("x")
        for junk in ("999999", "abc", "-1"):
            response = self.client.post(f"/lists/{ours.id}/items/{junk}/toggle")
            self.assertEqual(response.status_code, 404, junk)


class MyListsTest(SuperlistsTestCase):
    def test_heading_is_my_lists_and_the_navbar_link_stays_my_lists(self):
        self.client.force_login(self.edith)
        response = self.client.get("/lists/users/edith@example.com/")
        self.assertContains(response, '<h1 class="display-6 my-4">My Lists</h1>', html=True)
        self.assertContains(response, ">My lists</a>")
        self.assertNotContains(response, ">My Lists</a>")

    def test_shows_owned_and_shared_lists_named_by_first_item(self):
        self.make_list("edith first", "edith second", owner=self.edith)
        self.make_list("oni's list", owner=self.oni, shared_with=[self.edith])
        self.make_list("stranger's secret", owner=self.stranger)
        self.client.force_login(self.edith)
        response = self.client.get("/lists/users/edith@example.com/")
        self.assertContains(response, "edith first")
        self.assertNotContains(response, "edith second")
        self.assertContains(response, escape("oni's list"))
        self.assertNotContains(response, "stranger")

    def test_links_owners_and_lists_whose_items_were_all_deleted(self):
        mine = self.make_list("gone soon", owner=self.edith)
        mine.item_set.all().delete()
        shared = self.make_list("oni's", owner=self.oni, shared_with=[self.edith])
        self.client.force_login(self.edith)
        response = self.client.get("/lists/users/edith@example.com/")
        self.assertContains(
            response, f'<li><a href="{mine.get_absolute_url()}">(empty list)</a></li>', html=True
        )
        self.assertContains(response, f'<a href="{shared.get_absolute_url()}">')
        self.assertContains(response, "(oni@example.com)")

    def test_newest_first(self):
        self.make_list("older", owner=self.edith)
        self.make_list("newer", owner=self.edith)
        self.client.force_login(self.edith)
        content = self.client.get("/lists/users/edith@example.com/").content.decode()
        self.assertLess(content.index("newer"), content.index("older"))

    def test_other_users_get_404_and_see_nothing(self):
        self.make_list("edith secret", owner=self.edith)
        self.client.force_login(self.stranger)
        response = self.client.get("/lists/users/edith@example.com/")
        self.assertEqual(response.status_code, 404)
        self.assertNotContains(response, "edith secret", status_code=404)

    def test_anonymous_visitor_is_sent_to_log_in(self):
        self.make_list("edith secret", owner=self.edith)
        response = self.client.get("/lists/users/edith@example.com/", follow=True)
        self.assertRedirects(response, "/")
        self.assertContains(response, "Log in to see your lists")
        self.assertNotContains(response, "edith secret")

    def test_every_address_the_login_form_accepts_has_working_pages(self):
        for email in ("a/b@example.com", "q?x#y%z&w@example.com", "/x/y/@example.com"):
            self.assertTrue(LoginEmailForm(data={"email": email}).is_valid(), email)
            user = User.objects.create(email=email)
            self.make_list(f"list of {email}", owner=user)
            self.client.force_login(user)
            home = self.client.get("/")
            self.assertContains(home, "My lists")
            my_lists_path = re.search(r'href="([^"]+)">My lists<', home.content.decode())[1]
            response = self.client.get(html.unescape(my_lists_path))
            self.assertContains(response, escape(f"list of {email}"))

    def test_junk_emails_are_404(self):
        self.client.force_login(self.edith)
        for junk in ("nobody", "a%40b", "x" * 300):
            response = self.client.get(f"/lists/users/{junk}/")
            self.assertEqual(response.status_code, 404, junk)

    def test_query_count_does_not_grow_with_lists(self):
        self.client.force_login(self.edith)
        self.make_list("one", owner=self.edith)
        self.client.get("/lists/users/edith@example.com/")
        # The session, the user, and the lists with their names.
        with self.assertNumQueries(3):
            self.client.get("/lists/users/edith@example.com/")
        for n in range(50):
            self.make_list(f"mine {n}", "second", owner=self.edith)
            self.make_list(f"shared {n}", owner=self.oni, shared_with=[self.edith])
        with self.assertNumQueries(3):
            response = self.client.get("/lists/users/edith@example.com/")
        self.assertContains(response, "mine 49")
        self.assertContains(response, "shared 49")
