"""The admin screens: server-rendered pages (Django templates, htmx, django-tables2, django-filter)."""
