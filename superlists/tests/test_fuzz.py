"""Property-based fuzzing: whatever a client sends to any form or URL, the answer is never a 5xx."""

from django.core import mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import User
from lists.models import Item, List

junk_text = st.one_of(
    st.text(max_size=700),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.sampled_from(["", " ", "\x00", "a" * 501, "<script>", "' OR 1=1 --", "%00", "../.."]),
)
# URL path segments: anything printable that a client could put between two slashes.
path_segment = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="/?#", min_codepoint=33), max_size=60
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class FuzzFormsTest(TestCase):
    # Hypothesis's TestCase runs each example in its own transaction, with a fresh client.
    @classmethod
    def setUpTestData(cls):
        cls.owner = User.objects.create(email="edith@example.com")
        cls.list = List.objects.create(owner=cls.owner)
        cls.item = Item.objects.create(list=cls.list, text="existing")

    def setup_example(self):
        super().setup_example()
        self.client.force_login(self.owner)

    def assertNot5xx(self, response, what):
        self.assertLess(response.status_code, 500, what)

    @FUZZ
    @given(text=junk_text)
    def test_new_list_text(self, text):
        self.assertNot5xx(self.client.post("/lists/new", {"text": text}), text)

    @FUZZ
    @given(text=junk_text)
    def test_add_item_text(self, text):
        self.assertNot5xx(self.client.post(f"/lists/{self.list.id}/", {"text": text}), text)

    @FUZZ
    @given(sharee=junk_text)
    def test_share_sharee(self, sharee):
        response = self.client.post(f"/lists/{self.list.id}/share", {"sharee": sharee})
        self.assertNot5xx(response, sharee)

    @FUZZ
    @given(email=junk_text)
    def test_send_login_email(self, email):
        self.assertNot5xx(self.client.post("/accounts/send_login_email", {"email": email}), email)
        mail.outbox.clear()

    @FUZZ
    @given(token=junk_text)
    def test_login_token(self, token):
        self.assertNot5xx(self.client.get("/accounts/login", {"token": token}), token)

    @FUZZ
    @given(segment=path_segment, method=st.sampled_from(["get", "post"]))
    def test_url_parameters(self, segment, method):
        send = getattr(self.client, method)
        for url in (
            f"/lists/{segment}/",
            f"/lists/{segment}/share",
            f"/lists/{self.list.id}/items/{segment}/toggle",
            f"/lists/{segment}/items/{self.item.id}/delete",
            f"/lists/users/{segment}/",
        ):
            self.assertNot5xx(send(url), f"{method.upper()} {url}")
