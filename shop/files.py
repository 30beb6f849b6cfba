"""Files the shop's jobs write through Django's storage API (a file system or an object store,
config.media)."""

from django.core.files.base import ContentFile
from django.core.files.storage import Storage

from jobs.errors import TransientError
from shop.models import STORAGE_ERRORS


def replace_file(storage: Storage, name: str, content: bytes, *, what: str) -> str:
    """Write `content` under `name`, replacing the file there: a storage never overwrites, it
    finds a free name instead. The name it was saved under (another only if a writer got in
    between). A storage that fails (a full disk, an object store that did not answer) raises
    TransientError, for the job to try later; `what` names the file in that message."""
    try:
        if storage.exists(name):
            storage.delete(name)
        return storage.save(name, ContentFile(content))
    except STORAGE_ERRORS as exc:
        raise TransientError(f"{what} storage: {exc}") from exc
