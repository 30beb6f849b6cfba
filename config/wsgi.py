import os

from django.core.wsgi import get_wsgi_application

from shop.middleware import refuse_unusable_charsets

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# gunicorn serves this, and so does runserver (WSGI_APPLICATION).
application = refuse_unusable_charsets(get_wsgi_application())
