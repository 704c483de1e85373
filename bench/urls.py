from django.http import HttpResponse
from django.urls import path

from superlists.urls import urlpatterns as site_urlpatterns


def ceiling(request):
    return HttpResponse("ok")


urlpatterns = [path("bench/ceiling", ceiling), *site_urlpatterns]
