"""ratings: the stars each reviewer gave (Istio's Node.js service, in Python).

Shell package. ``python -m bookinfo.ratings [PORT]`` serves ``/health`` and ``GET|POST
/ratings/<id>``. ``SERVICE_VERSION`` picks the behaviour: in-memory ratings (v1 and any other
value), a database (``v2``: MySQL or MongoDB), or a fault mode (``v-faulty``, ``v-delayed``,
``v-unavailable``, ``v-unhealthy``). Pure parts: :mod:`.routing`, :mod:`.faults`, :mod:`.store`.
Seed data for the databases: ``mysqldb-init.sql`` and ``mongodb-seed.json`` next to this file.
"""
