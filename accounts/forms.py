from django import forms

from accounts.models import normalize_email

INVALID_EMAIL_ERROR = "Enter a valid email address to get a login link"


class LoginEmailForm(forms.Form):
    """The address a login link is sent to."""

    email = forms.EmailField(
        max_length=254,
        error_messages={
            "required": INVALID_EMAIL_ERROR,
            "invalid": INVALID_EMAIL_ERROR,
            "max_length": INVALID_EMAIL_ERROR,
        },
    )

    def clean_email(self):
        return normalize_email(self.cleaned_data["email"])
