"""details: the book's publication facts (Istio's Ruby service, in Python).

Shell package. ``python -m bookinfo.details [PORT]`` serves ``/health`` and ``/details/<id>``; v1
answers from a fixed record, v2 (``ENABLE_EXTERNAL_BOOK_SERVICE=true``) asks an external books API.
Pure parts: :mod:`.product_id` and :mod:`.book`.
"""
