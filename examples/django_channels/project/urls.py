from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

import hubbub


@csrf_exempt  # an internal webhook in this example; keep CSRF on for browser-facing views
@require_POST
def restock(request: HttpRequest) -> JsonResponse:
    """A plain sync view publishing with hubbub.Publisher (no async_to_sync needed)."""
    with hubbub.Publisher(settings.HUBBUB_URL, settings.HUBBUB_API_KEY) as publisher:
        result = publisher.publish("orders", {"restocked": True})
    return JsonResponse({"offset": result.offset})


urlpatterns = [path("restock", restock)]
