"""The static files' storage: whitenoise's compressed manifest storage (hashed names, served
with far-future caching), each file's URL worked out once per storage."""

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Every page asks for the URLs of the same few files (`{% static %}`, eight in
    base.html), and each answer (the manifest's lookup, quoting, joining to STATIC_URL) cost
    ~25 µs of CPU. The manifest is read once, when the storage is made, so a file's URL does
    not change while it lives: it is kept after the first time, per DEBUG (which serves the
    names unhashed). collectstatic's new manifest forgets them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[tuple[str, bool, bool], str] = {}

    def url(self, name, force=False):
        key = (name, force, settings.DEBUG)
        try:
            return self._urls[key]
        except KeyError:
            url = self._urls[key] = super().url(name, force)
            return url

    def post_process(self, *args, **kwargs):
        self._urls.clear()
        yield from super().post_process(*args, **kwargs)
        self._urls.clear()
