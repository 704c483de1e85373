from django.http import Http404


def send_login_email(request):
    raise Http404("Logging in arrives with the accounts issue")


login = logout = send_login_email
