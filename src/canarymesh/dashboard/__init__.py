"""SHELL: the web dashboard (``canarymesh dashboard``): an aiohttp app built by
:func:`canarymesh.dashboard.app.create_app` that serves the pure view models of
:mod:`canarymesh.views` as JSON and a small page (plain ES module + SVG) that draws them.
"""
