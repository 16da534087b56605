"""PURE: translation of the mesh model into Envoy xDS resources (proto3-JSON dicts).

How the runtime uses it (one call per step, all pure):

* ``mesh.build.build_mesh(resources, allocate)`` -> ``MeshSnapshot``; ``allocate(key)`` returns
  the local port for keys such as ``("inbound", "reviews-v1-0", "9080")`` (kinds: admin, http,
  inbound, app, tcp, gateway), so the runtime keeps ports stable across rebuilds.
* ``mesh.index.MeshIndex.of(mesh)`` once per mesh; pass it to every ``generate`` call.
* ``xds.generate.generate(mesh, proxy, index)`` -> ``XdsSnapshot``: resources per type URL
  (``snapshot.resources``), a content-hash ``version``; call ``check_consistent()`` before
  publishing. Secrets ``default``/``ROOTCA`` are included when ``proxy.identity`` is set,
  otherwise the runtime serves them over SDS itself (``external_secrets``).
* On a change, ``mesh.index.affected_proxies(mesh, config)`` names the proxies to push; for a
  VirtualService change ``index.with_virtual_services(new_mesh)`` and
  ``xds.generate.update_virtual_services(previous, new_mesh, proxy, new_index, hosts)`` rebuild
  only the touched virtual hosts.
* ``xds.bootstrap.build_ads_bootstrap`` / ``build_static_bootstrap`` start an Envoy;
  ``xds.telemetry.labels_from_log_entry`` turns access-log entries into Istio metric labels;
  ``xds.simulate.simulate`` answers "where would this request go" without Envoy.

One module per Envoy resource family: ``clusters``, ``endpoints``, ``listeners``, ``routes``
(with ``actions``), ``tcp``, ``tls``, ``rbac``, ``gateway``, ``gateway_api``, ``telemetry``;
every generated name comes from ``names``. Nothing here does I/O, reads the clock or the
environment.
"""
