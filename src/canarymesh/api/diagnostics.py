"""Diagnostics: what validation and analysis report, and the catalog of their stable codes.

Pure. Produced by :mod:`~canarymesh.api.loader`, :mod:`~canarymesh.api.validate` and
:mod:`~canarymesh.api.analyze`; rendered by ``canarymesh validate``/``analyze`` and checked by
``apply`` (which applies nothing when :attr:`Diagnostics.has_errors`).

Every message has a code that never changes meaning (like Istio's ``IST0101``), listed in
:data:`CATALOG` in code order and documented in ``docs/diagnostics.md``. A retired code stays in
the catalog with ``retired=True`` so that it is never reused. Where ``istioctl analyze`` reports
the same finding, the entry names Istio's code and analyzer (``istio``, ``analyzer``), and
the diagnostic carries the code next to ours (``CM1015 [IST0173] ...``, ``istioCode`` in JSON),
so that a user can search Istio's documentation for it. Field errors of Istio's own kinds are
Istio's schema validation errors (IST0106, warnings IST0133). Ranges:

* ``CM00xx`` reading input: YAML, apiVersion/kind, names, unsupported kinds
* ``CM01xx`` field values any kind can get wrong: unknown fields, types, ranges, names, durations
* ``CM02xx`` VirtualService, ``CM03xx`` DestinationRule, ``CM04xx`` Gateway and ServiceEntry,
  ``CM05xx`` security policies, ``CM06xx`` Gateway API, Kubernetes objects and Canary
* ``CM07xx`` limits on input and objects (sizes, nesting, aliases, replicas), see ``limits``
* ``CM1xxx`` cross-resource analysis (``canarymesh analyze``)

One line per diagnostic, as the CLI prints it::

    CM0201 [IST0106] error reviews.yaml:14 VirtualService default/reviews
        spec.http[0].route[1].weight: -5: must not be negative  (printed on one line)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CATALOG",
    "ISTIO_GROUPS",
    "Diagnostic",
    "Diagnostics",
    "Level",
    "Message",
    "message",
    "render_value",
]

Level = Literal["error", "warning", "info"]
LEVELS: tuple[Level, ...] = ("error", "warning", "info")
# API groups whose kinds Istio's schema validation (and so istioctl analyze's IST0106) covers.
ISTIO_GROUPS = frozenset({
    "networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io",
})  # fmt: skip
# Ranges of per-object validation: on an Istio kind they are Istio's schema validation.
VALIDATION_RANGES = ("CM01", "CM02", "CM03", "CM04", "CM05")
SCHEMA_ERROR = ("IST0106", "schema.ValidationAnalyzer")
SCHEMA_WARNING = ("IST0133", "schema.ValidationAnalyzer")


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of the catalog: ``template`` is formatted with the diagnostic's arguments.

    ``istio`` is the code ``istioctl analyze`` gives the same finding and ``analyzer`` the
    name of the Istio analyzer that reports it (as in its Metadata), when there is one."""

    code: str
    level: Level
    title: str
    template: str
    description: str
    retired: bool = False
    istio: str | None = None
    analyzer: str | None = None


def _m(
    code: str,
    level: Level,
    title: str,
    template: str,
    description: str,
    istio: tuple[str, str] | None = None,
) -> Message:
    code_and_analyzer: tuple[str | None, str | None] = istio or (None, None)
    return Message(code, level, title, template, description, False, *code_and_analyzer)


CATALOG: tuple[Message, ...] = (
    # --- CM00xx: reading input --------------------------------------------------------------
    _m(
        "CM0001",
        "error",
        "YAML syntax error",
        "{problem}",
        "The document is not valid YAML. The line is where the parser gave up; the mistake is "
        "often on the line before (a bad indent or an unclosed quote).",
    ),
    _m(
        "CM0002",
        "error",
        "Duplicate key",
        "key {key} is written twice in this mapping (first on line {first})",
        "YAML parsers keep the last value silently; the Kubernetes API server refuses the "
        "document. Remove one of the two keys.",
    ),
    _m(
        "CM0003",
        "error",
        "Not a manifest",
        "a manifest must be a mapping, not {got}",
        "Each YAML document must be a mapping with apiVersion, kind and metadata.",
    ),
    _m(
        "CM0004",
        "error",
        "Missing apiVersion or kind",
        "is required",
        "Every manifest needs apiVersion and kind, so that we know which schema applies.",
    ),
    _m(
        "CM0005",
        "error",
        "Missing name",
        "is required",
        "Every manifest needs metadata.name (generateName is not supported: apply must know the "
        "identity of each object).",
    ),
    _m(
        "CM0006",
        "error",
        "Unknown kind",
        "unknown kind {kind} in API group {group}",
        "The API group is one we know (Kubernetes core/apps, Istio, Gateway API, canarymesh.io) "
        "but it has no such kind; this is usually a typo (VirtualServce).",
    ),
    _m(
        "CM0007",
        "error",
        "API version not served",
        "{kind} is not served as {api_version}; use one of {versions}",
        "The kind exists but not at this version, e.g. networking.istio.io/v2. Istio serves "
        "networking kinds as v1alpha3, v1beta1 and v1, and security kinds as v1beta1 and v1.",
    ),
    _m(
        "CM0008",
        "warning",
        "Unsupported kind",
        "{kind} ({api_version}) is not implemented by the local mesh; it is skipped",
        "The document is well-formed but belongs to a kind that shapes traffic on a cluster "
        "(EnvoyFilter, Telemetry, Ingress, GRPCRoute...) and that the local mesh does not "
        "implement: it is valid for a real cluster, but locally the traffic will not follow it.",
    ),
    _m(
        "CM0009",
        "info",
        "Defined twice",
        "defined again; this definition replaces the one at {first}",
        "Two documents in the input have the same kind, namespace and name; like kubectl apply, "
        "the later one wins. Reported as info: applying a file that replaces an object (fault-"
        "injection-details-v1.yaml over destination-rule-all.yaml) is normal.",
    ),
    _m(
        "CM0010",
        "error",
        "Unreadable input",
        "{problem}",
        "A path given with -f does not exist, is not UTF-8 text, or is a directory without any "
        ".yaml/.yml file.",
    ),
    _m(
        "CM0011",
        "error",
        "Bad List",
        "items of a List must be a list of manifests",
        "kind: List wraps manifests in items; items must be a sequence.",
    ),
    _m(
        "CM0012",
        "info",
        "Kind outside the mesh",
        "{kind} ({api_version}) has no effect on the local mesh; it is skipped",
        "A Kubernetes object that does not change how traffic flows (RBAC, monitoring CRDs, "
        "cert-manager...). It is valid for a real cluster and ignored locally.",
    ),
    # --- CM0013: YAML that parses but cannot be a manifest (see also CM07xx) -----------------
    _m(
        "CM0013",
        "error",
        "Unsupported YAML",
        "{problem}",
        "The YAML is well-formed but cannot be turned into the JSON the Kubernetes API server "
        "stores: a tag other than YAML's standard ones (!!python/object, !custom), a mapping or "
        "list used as a key, a value its tag cannot read (!!int abc, a 5,000-digit number), a "
        "merge key (<<) whose value is not a mapping, or an alias inside the node it refers to.",
    ),
    # --- CM01xx: field values ---------------------------------------------------------------
    _m(
        "CM0101",
        "error",
        "Unknown field",
        "unknown field",
        "The field is not part of the schema of this kind (Istio's CRD schemas refuse unknown "
        "fields). Check spelling and indentation: a field at the wrong level is unknown there.",
    ),
    _m(
        "CM0102",
        "error",
        "Wrong type",
        "must be {expected}",
        'The value has the wrong type, e.g. a quoted number ("50") where an integer is expected, '
        "or a single string where a list is expected.",
    ),
    _m(
        "CM0103",
        "error",
        "Out of range",
        "must be {expected}",
        "A number outside its allowed range: negative weights, HTTP statuses outside 200-599, "
        "percentages outside 0-100, ports outside 1-65535, negative counts.",
    ),
    _m(
        "CM0104",
        "error",
        "Missing field",
        "is required",
        "A field the kind needs is absent or empty (a destination without host, a subset without "
        "name, a DestinationRule without host).",
    ),
    _m(
        "CM0105",
        "error",
        "Not an allowed value",
        "must be one of {choices}",
        "An enumerated field (tls.mode, mtls.mode, action, loadBalancer.simple...) has a value "
        "outside its list. Values are case-sensitive.",
    ),
    _m(
        "CM0106",
        "error",
        "Invalid name",
        "{what} must be {form}",
        "Kubernetes names are DNS-1123 subdomains (lower-case letters, digits, '-' and '.', at "
        "most 253 characters); Service names, subset and Gateway names are DNS-1123 labels (no "
        "'.', at most 63 characters).",
    ),
    _m(
        "CM0107",
        "error",
        "Invalid duration",
        "must be a duration of at least 1ms, such as 7s, 0.5s, 100ms or 1m",
        "Durations are a number with a unit (h, m, s, ms, us, ns), as Istio's schema requires; a "
        "bare number (7) or a negative duration is refused.",
    ),
    _m(
        "CM0108",
        "error",
        "Invalid regex",
        "{problem}; Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)",
        "Envoy compiles regular expressions with RE2, which has no lookaround and no "
        "backreferences; Istio also limits a regex to 1024 characters.",
    ),
    _m(
        "CM0109",
        "error",
        "Ambiguous string match",
        "must set only one of exact, prefix, regex (found {found})",
        "A StringMatch (uri, headers, authority...) is a oneof: one kind of match at most. An "
        "empty match is valid (on a header it matches the header's presence).",
    ),
    _m(
        "CM0110",
        "error",
        "Invalid label",
        "{problem}",
        "Label keys are an optional DNS prefix and a name of at most 63 characters; label values "
        "are at most 63 characters of letters, digits, '-', '_' and '.'.",
    ),
    _m(
        "CM0111",
        "error",
        "Invalid host",
        "{problem}",
        "Hosts are DNS names, optionally with a leading '*.' wildcard ('*' alone only on "
        "gateways), or a namespace/host pair where Istio allows one.",
    ),
    _m(
        "CM0112",
        "error",
        "Empty value",
        "must not be empty",
        "A string that Istio refuses when empty: a prefix or regex match, a header name.",
    ),
    # --- CM02xx: VirtualService -------------------------------------------------------------
    _m(
        "CM0201",
        "error",
        "Negative weight",
        "must not be negative",
        'A destination weight below 0 (Istio: "weight < 0").',
    ),
    _m(
        "CM0202",
        "error",
        "All weights zero",
        "the weights of {count} destinations add up to 0, so no destination gets traffic",
        'With more than one destination, at least one weight must be positive (Istio: "total '
        'destination weight = 0").',
    ),
    _m(
        "CM0203",
        "warning",
        "Weights do not add up to 100",
        "the weights add up to {total}, not 100; they are read as proportions of {total}",
        "Istio treats weights as relative (each destination gets weight/sum), so this is accepted;"
        " but canary steps and the docs assume percentages that add up to 100.",
    ),
    _m(
        "CM0204",
        "error",
        "Delegate VirtualService with gateways, tcp or tls",
        "a VirtualService without hosts is a delegate, and a delegate cannot set {kind}",
        "A VirtualService with no hosts is a delegate: another VirtualService hands it requests"
        " with `delegate`. As in Istio, a delegate may only hold http rules; its gateways come"
        " from the VirtualService that delegates to it.",
    ),
    _m(
        "CM0205",
        "error",
        "VirtualService without routes",
        "needs at least one of http, tcp or tls",
        "A VirtualService with no rules routes nothing.",
    ),
    _m(
        "CM0206",
        "error",
        "HTTP rule without action",
        "an HTTP rule needs one of route, redirect, directResponse or delegate",
        "Each HTTP rule must say where matching requests go.",
    ),
    _m(
        "CM0207",
        "error",
        "Conflicting HTTP actions",
        "{problem}",
        "route, redirect, directResponse and delegate exclude each other in ways Istio checks: a "
        "redirect or a direct response cannot be combined with a route.",
    ),
    _m(
        "CM0208",
        "error",
        "Empty fault",
        "fault injection needs an abort and/or a delay",
        "A fault block that injects nothing.",
    ),
    _m(
        "CM0209",
        "warning",
        "Abort without error",
        "abort configured, but no httpStatus or grpcStatus set",
        "The abort has no error to return, so it does nothing (Istio warns the same).",
        istio=SCHEMA_WARNING,
    ),
    _m(
        "CM0210",
        "error",
        "Invalid redirect",
        "{problem}",
        "A redirect must change something (uri, authority, scheme or port); the code is 3xx.",
    ),
    _m(
        "CM0211",
        "error",
        "Invalid retry policy",
        "{problem}",
        "attempts must not be negative; perTryTimeout/retryOn need attempts > 0; retryOn is a "
        "comma-separated list of Envoy retry conditions or HTTP status codes.",
    ),
    _m(
        "CM0212",
        "error",
        "Invalid rewrite",
        "{problem}",
        "A rewrite sets uri or uriRegexRewrite (not both), or authority.",
    ),
    _m(
        "CM0213",
        "info",
        "Unreachable rule",
        "rule {rule} is never used ({reason})",
        "Rules are tried in order; a rule after one without match (or with the same matches) can "
        "never be selected. Istio reports this as a warning; it is info here because Istio's own "
        "fault-injection-details-v1.yaml keeps such a rule on purpose.",
        istio=("IST0130", "schema.ValidationAnalyzer.VirtualService"),
    ),
    _m(
        "CM0214",
        "error",
        "Wildcard mesh host",
        "the host * is not allowed for a VirtualService bound to the mesh",
        "Only gateway-bound VirtualServices may use the bare wildcard host.",
    ),
    _m(
        "CM0215",
        "error",
        "Invalid L4 route",
        "{problem}",
        "tcp rules need a route; tls rules need a match with sniHosts and a route.",
    ),
    _m(
        "CM0216",
        "info",
        "Ineffective match",
        "match {match} of rule {rule} is never used ({reason})",
        "A match that an earlier match already takes (the same conditions, or a shorter prefix "
        "with the same other conditions) never selects its rule; the rule may still be used "
        "through its other matches (Istio's IST0131).",
        istio=("IST0131", "schema.ValidationAnalyzer.VirtualService"),
    ),
    # --- CM03xx: DestinationRule ------------------------------------------------------------
    _m(
        "CM0301",
        "error",
        "Duplicate subset",
        "subset {name} is already defined at spec.subsets[{first}]",
        "Subset names must be unique within a DestinationRule.",
    ),
    _m(
        "CM0302",
        "error",
        "Conflicting load balancer",
        "{problem}",
        "loadBalancer sets either simple or consistentHash, and consistentHash names exactly one "
        "hash key (httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName).",
    ),
    _m(
        "CM0303",
        "error",
        "Incomplete client TLS",
        "{problem}",
        "tls.mode MUTUAL needs clientCertificate and privateKey, or credentialName.",
    ),
    # --- CM04xx: Gateway and ServiceEntry ---------------------------------------------------
    _m(
        "CM0401",
        "error",
        "Gateway without servers",
        "a Gateway needs at least one server",
        "A Gateway with no servers opens no port.",
    ),
    _m(
        "CM0402",
        "error",
        "Server without TLS",
        "{protocol} servers need tls settings",
        "HTTPS and TLS servers terminate or pass through TLS and must say how.",
    ),
    _m(
        "CM0403",
        "error",
        "Duplicate server port name",
        "port name {name} is already used by another server",
        "Port names of one Gateway's servers must be unique (Istio refuses duplicates).",
    ),
    _m(
        "CM0404",
        "error",
        "Invalid protocol",
        "must be one of {choices}",
        "Istio protocols: HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, REDIS, MYSQL, TCP, TLS, UDP.",
    ),
    # --- CM05xx: security -------------------------------------------------------------------
    _m(
        "CM0501",
        "warning",
        "DENY policy without rules",
        "a {action} policy without rules matches no request and has no effect",
        "An ALLOW policy without rules denies everything; a DENY (or AUDIT) policy without rules "
        "matches nothing. This is almost always a mistake.",
    ),
    _m(
        "CM0502",
        "error",
        "Port-level mTLS without selector",
        "portLevelMtls requires a workload selector",
        "Istio applies port-level mTLS only to selected workloads.",
    ),
    _m(
        "CM0503",
        "error",
        "CUSTOM policy without provider",
        "a CUSTOM policy needs provider.name",
        "action: CUSTOM delegates to an extension provider, which must be named.",
    ),
    _m(
        "CM0504",
        "error",
        "Empty rule part",
        "{problem}",
        "An empty source, operation or condition in an AuthorizationPolicy rule is refused by "
        "Istio (it would match everything by accident).",
    ),
    # --- CM06xx: Gateway API, Kubernetes, Canary --------------------------------------------
    _m(
        "CM0601",
        "error",
        "Selector does not match template",
        "spec.selector does not match the pod template labels",
        "Kubernetes refuses a Deployment whose selector would not select its own pods.",
    ),
    _m(
        "CM0602",
        "error",
        "Duplicate port",
        "port {port} is already defined at {first}",
        "A Service's ports (and their names) must be unique.",
    ),
    _m(
        "CM0603",
        "error",
        "Invalid canary steps",
        "{problem}",
        "Canary step weights are percentages between 0 and 100 and must increase.",
    ),
    _m(
        "CM0604",
        "error",
        "Invalid canary strategy",
        "{problem}",
        "A Canary uses one strategy (canary, blueGreen or mirror); a canary ramp is steps or "
        "stepWeight/maxWeight, and each step sets exactly one of setWeight, pause, analysis.",
    ),
    _m(
        "CM0605",
        "error",
        "Invalid canary analysis",
        "{problem}",
        "alpha (the statistical judge's false-alarm rate over the whole rollout) must be in "
        "(0, 0.2]; metrics are built-in (request-success-rate, request-duration) or have a "
        "query whose template variables are namespace, host, version and interval; a metric "
        "judged by thresholds needs thresholdRange min or max, and min must not be above max.",
    ),
    _m(
        "CM0606",
        "error",
        "Invalid canary target",
        "{problem}",
        "The target names the stable and canary versions of the host, either as two subsets of "
        "its DestinationRule or as two Deployments, and they must differ.",
    ),
    _m(
        "CM0607",
        "warning",
        "Canary step outlasts the progress deadline",
        "{problem}",
        "A pause or analysis step at least as long as progressDeadline cannot end before the "
        "deadline rolls the canary back; lengthen the deadline or shorten the step.",
    ),
    _m(
        "CM0608",
        "error",
        "Invalid canary webhook or load generator",
        "{problem}",
        "Webhooks and the load generator need an http(s) URL, webhook names must be unique, "
        "and the load generator's rate must be positive.",
    ),
    _m(
        "CM0609",
        "error",
        "Invalid config canary",
        "{problem}",
        "A config canary names changed VirtualService, DestinationRule or AuthorizationPolicy "
        "documents about its target host, each valid on its own, and moves the target's clients "
        "to them in canary steps.",
    ),
    _m(
        "CM0610",
        "error",
        "Invalid notification",
        "{problem}",
        "A Canary's notifications name an AlertProvider (providerRef) or describe one inline "
        "(provider); a provider's URL is a credential kept in a Secret (secretRef, key "
        "address), except an alertmanager's address; channel is Slack's, username Slack's and "
        "Discord's, and meshWide belongs on an AlertProvider.",
    ),
    _m(
        "CM0611",
        "error",
        "Not supported in an Argo Rollout",
        "{problem}",
        "Argo Rollouts' Rollout and analysis templates run on the local mesh as a Canary runs: "
        "what it cannot run (the blue-green strategy, experiments, header and mirror routes, "
        "traffic routers other than Istio's subset split, analysis providers other than "
        "Prometheus, conditions it cannot read as thresholds) is refused by field, and nothing "
        "is applied. docs/argo-rollouts.md lists what maps.",
    ),
    _m(
        "CM0612",
        "error",
        "Invalid release group",
        "{problem}",
        "A release group (spec.group) names its member services, each with its own "
        "VirtualService and two subsets; the target is the ingress VirtualService that puts "
        "sessions in the canary slice, in canary steps, judged with the built-in metrics.",
    ),
    # --- CM07xx: limits (api/limits.py) ------------------------------------------------------
    _m(
        "CM0701",
        "error",
        "Input too large",
        "is {size}; a file or standard input may be at most {limit}",
        "Each file, standard input, and each text sent to the control plane is refused above "
        "the limit before it is read, so that a huge or endless input cannot exhaust memory.",
    ),
    _m(
        "CM0702",
        "error",
        "Document too large",
        "the document is {size}; a YAML document may be at most {limit}",
        "One YAML document (between --- lines) is refused above the Kubernetes API server's "
        "request limit before it is parsed. The field named is the one that holds most of it.",
    ),
    _m(
        "CM0703",
        "error",
        "Nesting too deep",
        "mappings and lists nest more than {limit} levels deep",
        "No manifest nests anywhere near this deep; such a document is refused before it is "
        "read into objects. The field named is where the limit was crossed.",
    ),
    _m(
        "CM0704",
        "error",
        "Alias expansion",
        "anchors and aliases expand the document by more than {limit}",
        "YAML aliases (*name) repeat the node of an anchor (&name), and a few lines of nested "
        "aliases can stand for billions of values (the 'billion laughs' attack). The expansion "
        "is measured before it is built and refused above the limit.",
    ),
    _m(
        "CM0705",
        "error",
        "Object too large",
        "the object is {size} as JSON; Kubernetes stores objects of at most {limit}",
        "The API server refuses objects over 1 MiB (ConfigMaps and Secrets explicitly); keep "
        "large data in files or volumes. The field named is the one that holds most of it.",
    ),
    _m(
        "CM0706",
        "error",
        "Annotations too large",
        "annotations add up to {size}; Kubernetes allows at most {limit}",
        "The API server refuses objects whose annotation keys and values together exceed 256 KiB.",
    ),
    _m(
        "CM0707",
        "error",
        "Too many replicas for the local mesh",
        "the local mesh runs at most {limit} replicas of a Deployment",
        "Every replica on the local mesh is real processes (the application, its Envoy "
        "sidecar, a network namespace), so a Deployment may ask for at most this many. A "
        "cluster has no such ceiling; there, scale with the cluster's own tools.",
    ),
    # --- CM1xxx: analysis -------------------------------------------------------------------
    _m(
        "CM1001",
        "error",
        "Unknown subset",
        "subset {subset} of host {host} is not defined by any DestinationRule",
        "The route sends traffic to a subset that no DestinationRule in the input defines; Envoy "
        "would answer 503. The classic Bookinfo mistake: virtual-service-all-v1.yaml applied "
        "before destination-rule-all.yaml. Checked when the input holds DestinationRules or the "
        "destination's Service.",
        istio=("IST0101", "virtualservice.DestinationRuleAnalyzer"),
    ),
    _m(
        "CM1002",
        "warning",
        "Route to a subset without workloads",
        "subset {subset} of {host} selects no Deployment in the input",
        "A VirtualService sends traffic to a subset whose labels (with the Service's selector) "
        "match the pods of no Deployment in the input: requests would get 503 no healthy upstream."
        " Checked only when the input holds workloads (Deployments or Pods); CM1015 reports "
        "the subset itself.",
    ),
    _m(
        "CM1003",
        "error",
        "Unknown destination host",
        "host {host} is not a Service or ServiceEntry of the input",
        "The route sends traffic to a host nothing defines. Checked only when the input holds "
        "Services.",
        istio=("IST0101", "virtualservice.DestinationHostAnalyzer"),
    ),
    _m(
        "CM1004",
        "warning",
        "Gateway selects no workload",
        "selector {selector} matches no Deployment and no built-in gateway",
        "The Gateway's selector must match the labels of a gateway workload (Pods or "
        "Deployments of the input); the mesh provides the ingress gateway (istio: "
        "ingressgateway) and, on a cluster, often an egress gateway (istio: egressgateway).",
        istio=("IST0101", "gateway.IngressGatewayPortAnalyzer"),
    ),
    _m(
        "CM1005",
        "error",
        "Unknown gateway",
        "gateway {gateway} is not defined in the input",
        "The VirtualService binds to a Gateway that the input does not define (mesh is the "
        "reserved name of the sidecars). Checked only when the input holds Gateways.",
        istio=("IST0101", "virtualservice.GatewayAnalyzer"),
    ),
    _m(
        "CM1006",
        "error",
        "Conflicting VirtualServices",
        "host {host} is also routed by VirtualService {other}",
        "Two VirtualServices for the same host on the mesh are not merged; only one wins (Istio's "
        "IST0109).",
        istio=("IST0109", "virtualservice.ConflictingMeshGatewayHostsAnalyzer"),
    ),
    _m(
        "CM1007",
        "info",
        "Port name without protocol",
        "port name {name} does not name a protocol; traffic is treated as TCP",
        "Istio selects the protocol from appProtocol or the port name prefix (http, http2, https, "
        "grpc, grpc-web, tcp, tls, mongo, mysql, redis, udp, followed by - or nothing).",
        istio=("IST0118", "service.PortNameAnalyzer"),
    ),
    _m(
        "CM1008",
        "error",
        "mTLS conflict",
        "host {host} requires mTLS (PeerAuthentication {policy} is STRICT) but the DestinationRule"
        " disables TLS",
        "The clients' sidecars would send plain text to a server that accepts only mTLS (Istio's "
        "IST0113).",
    ),
    _m(
        "CM1009",
        "error",
        "Unknown backend Service",
        "Service {name} is not defined in the input",
        "An HTTPRoute backendRef names a Service that the input does not define. Checked only when"
        " the input holds Services.",
    ),
    _m(
        "CM1010",
        "warning",
        "DestinationRule for unknown host",
        "host {host} is not a Service or ServiceEntry of the input",
        "The DestinationRule applies to no known service. Checked only when the input holds "
        "Services.",
        istio=("IST0174", "destinationrule.SubsetSelectPodAnalyzer"),
    ),
    _m(
        "CM1011",
        "warning",
        "Unknown ServiceAccount",
        "serviceAccountName {name} is not defined in the input",
        "Kubernetes will not start pods whose ServiceAccount does not exist. Checked only when the"
        " input holds ServiceAccounts.",
    ),
    _m(
        "CM1012",
        "warning",
        "Canary references missing config",
        "{problem}",
        "A Canary names a VirtualService or subsets that the input does not define.",
    ),
    _m(
        "CM1013",
        "warning",
        "VirtualService host without service",
        "host {host} is not a Service or ServiceEntry of the input",
        "A VirtualService bound to the mesh routes a host that nothing defines, so no sidecar will"
        " ever send it traffic. Checked only when the input holds Services.",
    ),
    _m(
        "CM1014",
        "error",
        "Unknown service port",
        "port {port} is not a port of Service {host} (it has {ports})",
        "The route sends traffic to a port the destination Service does not expose, so there is "
        "no such upstream cluster and requests would get 503. Checked when the Service is in "
        "the input.",
        istio=("IST0101", "virtualservice.DestinationHostAnalyzer"),
    ),
    _m(
        "CM1015",
        "warning",
        "Subset selects no pods",
        "subset {subset} selects no pods of {host} (labels {labels})",
        "The subset's labels, with the Service's selector, match no Pod or Deployment template "
        "of the input: a route to it gets 503 no healthy upstream. Istio reports it as an "
        "error; it is a warning here because Istio's own destination-rule-all.yaml defines "
        "subsets for versions that are deployed later (ratings v2-mysql). Checked only when the "
        "input holds workloads.",
        istio=("IST0173", "destinationrule.SubsetSelectPodAnalyzer"),
    ),
    _m(
        "CM1016",
        "error",
        "Destination port required",
        "Service {host} exposes ports {ports}; the destination must name one",
        "A destination of a Service with several ports must say which one (port.number); "
        "otherwise the route's target depends on the port the request came in on.",
        istio=("IST0112", "virtualservice.DestinationHostAnalyzer"),
    ),
    _m(
        "CM1017",
        "warning",
        "VirtualService host not in its gateway",
        "no host of {hosts} is served by gateway {gateway}",
        "A VirtualService bound to a Gateway routes only requests for hosts that a server of "
        "that Gateway accepts; with no host in common, the gateway never uses it.",
        istio=("IST0132", "virtualservice.GatewayAnalyzer"),
    ),
    _m(
        "CM1018",
        "warning",
        "Reference to an internal gateway",
        "gateway {gateway} is generated by the implementation; bind to its Gateway API Gateway",
        "Names containing ~istio-autogenerated-k8s-gateway~ belong to Gateways that Istio "
        "generates from Gateway API resources; they may change without notice.",
        istio=("IST0165", "virtualservice.GatewayAnalyzer"),
    ),
    _m(
        "CM1019",
        "warning",
        "Gateway port not on its Service",
        "port {port} is not a port (or targetPort) of a Service selecting {selector}",
        "A Gateway server listens on the gateway workload, but clients reach it through the "
        "gateway's Service: a port the Service does not expose is unreachable.",
        istio=("IST0162", "gateway.IngressGatewayPortAnalyzer"),
    ),
    _m(
        "CM1020",
        "error",
        "Conflicting gateways",
        "port {port} with hosts {hosts} on workloads {selector} is also served by {others}",
        "Two Gateways that select the same workload serve the same host on the same port: "
        "only one of their servers takes the requests.",
        istio=("IST0145", "gateway.ConflictingGatewayAnalyzer"),
    ),
    _m(
        "CM1021",
        "warning",
        "TLS origination without CA certificates",
        "tls.mode {mode} without caCertificates: the server of {host} is checked against the "
        "system's roots only",
        "SIMPLE and MUTUAL TLS should name caCertificates (or a credentialName with a workload "
        "selector) so that the sidecar checks who it talks to; without them it trusts every "
        "certificate a public CA issued.",
        istio=("IST0128", "destinationrule.CaCertificateAnalyzer"),
    ),
    _m(
        "CM1022",
        "warning",
        "TLS origination without CA certificates on a port",
        "tls.mode {mode} on port {port} without caCertificates: the server of {host} is "
        "checked against the system's roots only",
        "As CM1021, for a portLevelSettings entry.",
        istio=("IST0129", "destinationrule.CaCertificateAnalyzer"),
    ),
    _m(
        "CM1023",
        "warning",
        "Unknown Istio annotation",
        "unknown annotation {annotation}",
        "An annotation in an Istio domain (*.istio.io) that Istio does not define: usually a "
        "typo, and ignored.",
        istio=("IST0108", "annotations.K8sAnalyzer"),
    ),
    _m(
        "CM1024",
        "info",
        "Deprecated Istio annotation",
        "annotation {annotation} is deprecated{instead} and may not work in future Istio versions",
        "Istio still reads the annotation but has replaced it.",
        istio=("IST0135", "annotations.K8sAnalyzer"),
    ),
    _m(
        "CM1025",
        "warning",
        "Misplaced Istio annotation",
        "annotation {annotation} applies to {kinds}, not to a {kind}",
        "The annotation is read only on other kinds (a Pod annotation on a Deployment belongs "
        "under spec.template.metadata.annotations).",
        istio=("IST0107", "annotations.K8sAnalyzer"),
    ),
    _m(
        "CM1026",
        "warning",
        "Invalid Istio annotation",
        "annotation {annotation}: {problem}",
        "The annotation's value is not one the sidecar injector accepts.",
        istio=("IST0125", "annotations.K8sAnalyzer"),
    ),
    _m(
        "CM1027",
        "warning",
        "Subset routing skipped at the gateway",
        "requests for {host} from gateway {gateway} ignore the subsets routed by {other}",
        "A gateway sends requests straight to the destination's endpoints: the subsets another "
        "VirtualService routes to for the same host apply to sidecars, not to this gateway.",
        istio=("IST0140", "virtualservice.DestinationHostAnalyzer"),
    ),
    _m(
        "CM1028",
        "warning",
        "ExternalName Service port name",
        "port {name} of an ExternalName Service should be named with its protocol",
        "The proxy treats an ExternalName Service's unnamed or tcp ports as TCP and may "
        "refuse traffic to them; name them http, https, tls... (Istio's IST0150).",
        istio=("IST0150", "service.PortNameAnalyzer"),
    ),
)

_BY_CODE: Mapping[str, Message] = {m.code: m for m in CATALOG}


def message(code: str) -> Message:
    return _BY_CODE[code]


def render_value(value: object) -> str:
    """A value as the user would write it in JSON/YAML: ``-5``, ``"7"``, ``["a"]``, shortened."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: where (file, line, resource, field path), what (value) and why (reason)."""

    code: str
    level: Level
    file: str
    line: int
    resource: str | None
    field: str | None
    value: str | None
    reason: str
    istio_code: str | None = None

    def __str__(self) -> str:
        shown = f"{self.code} [{self.istio_code}]" if self.istio_code else self.code
        text = f"{shown} {self.level} {self.file}:{self.line}"
        subject = [part for part in (self.resource, self.field) if part]
        if subject:
            text += " " + " ".join(subject)
        if self.value is not None:
            text += f": {self.value}"
        return f"{text}: {self.reason}"

    def to_json(self) -> dict[str, str | int | None]:
        return {
            "code": self.code,
            "istioCode": self.istio_code,
            "level": self.level,
            "file": self.file,
            "line": self.line,
            "resource": self.resource,
            "field": self.field,
            "value": self.value,
            "reason": self.reason,
        }


def istio_counterpart(code: str, group: str | None = None) -> tuple[str, str] | None:
    """Istio's code and analyzer for our ``code`` about an object of API ``group``, if any."""
    entry = _BY_CODE[code]
    if entry.istio is not None and entry.analyzer is not None:
        return entry.istio, entry.analyzer
    if group in ISTIO_GROUPS and code.startswith(VALIDATION_RANGES):
        return SCHEMA_ERROR if entry.level == "error" else None
    return None


def make(
    code: str,
    *,
    file: str,
    line: int,
    resource: str | None = None,
    field: str | None = None,
    value: str | None = None,
    api_group: str | None = None,
    **args: object,
) -> Diagnostic:
    """A diagnostic whose level and reason come from the catalog entry of ``code``;
    ``api_group`` is the API group of the object it is about (it decides whether Istio's schema
    validation would report it too)."""
    entry = _BY_CODE[code]
    counterpart = istio_counterpart(code, api_group)
    return Diagnostic(
        code=code,
        level=entry.level,
        file=file,
        line=line,
        resource=resource,
        field=field,
        value=value,
        reason=entry.template.format(**args),
        istio_code=counterpart[0] if counterpart else None,
    )


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """An ordered, immutable collection of diagnostics (file, then line, then code)."""

    items: tuple[Diagnostic, ...] = ()

    @staticmethod
    def of(items: Iterable[Diagnostic]) -> Diagnostics:
        ordered = sorted(set(items), key=lambda d: (d.file, d.line, d.code, str(d)))
        return Diagnostics(tuple(ordered))

    def __add__(self, other: Diagnostics) -> Diagnostics:
        return Diagnostics.of((*self.items, *other.items))

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def at_level(self, level: Level) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.items if d.level == level)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return self.at_level("error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return self.at_level("warning")

    @property
    def has_errors(self) -> bool:
        return any(d.level == "error" for d in self.items)

    def lines(self) -> list[str]:
        return [str(d) for d in self.items]
