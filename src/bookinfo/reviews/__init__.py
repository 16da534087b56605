"""reviews: two reviews of the book, with ratings from the ratings service in v2 and v3.

Shell package (Istio's Java service, in Python). ``python -m bookinfo.reviews [PORT]`` serves
``/health`` and ``/reviews/<id>``. The version is not a flag but the image's environment:
``ENABLE_RATINGS`` turns ratings on, ``STAR_COLOR`` picks the colour and the ratings timeout.
Pure parts: :mod:`.document` and :mod:`.product_id`.
"""
