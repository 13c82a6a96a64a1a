/**
 * Renders the Envoy ingress config: envoy/ingress.base.yaml plus what comes
 * from the mesh model (mesh/topology.yaml and the descriptor set: ports,
 * transcoded services, routes, public paths, clusters). `npm run generate:envoy` writes envoy/ingress.local.yaml
 * for the default local ports; tests render with random ports.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { MethodContract } from "@leadmesh/platform";
import { parse, stringify } from "yaml";
import { DESCRIPTOR_PATH } from "./descriptor";
import { EDGE_CERTIFICATE_SECRET, type EnvoySdsLocation, envoySdsFiles, MESH_CA_SECRET, renderEnvoySdsFiles, sdsSecretConfig } from "./envoy-sds";
import { ingressServices, loadMeshModel, type MeshModel, spiffeIdOf } from "./model";
import { REPO_ROOT } from "./topology";

export { reachableFromOutside } from "./model";

export interface EnvoyRenderOptions {
  listenPort: number;
  adminPort: number;
  /** gRPC port(s) of each exposed service: one Envoy endpoint per replica. */
  upstreamPorts: Record<string, number | number[]>;
  /** Path of the descriptor set as Envoy should read it. */
  descriptorPath: string;
  /**
   * gRPC paths ("/pkg.Service/Method") to let through jwt_authn without a
   * token, on top of the RPCs declared public in proto/. For side-by-side
   * measurements (the benchmark's unauthenticated baseline), not production.
   * Each must be an RPC the edge routes (see reachableFromOutside).
   */
  extraPublicPaths?: string[];
  /**
   * Directory of the mesh certificates (ca.crt, <edge>.crt, <edge>.key, as
   * ensureMeshCertificates writes them) and of Envoy's SDS files
   * (envoy-sds.ts), as Envoy should read the path (relative paths are read
   * from Envoy's working directory, the repository root).
   */
  tlsDir: string;
  /** Directory of Envoy's SDS files (default: tlsDir). */
  sdsDir?: string;
}

/** Services behind the ingress (implemented and declared `ingress`). */
export const exposedServices = ingressServices;

export function renderEnvoyConfig(model: MeshModel, options: EnvoyRenderOptions): string {
  const config = parse(readFileSync(join(REPO_ROOT, "envoy", "ingress.base.yaml"), "utf8"));
  config.admin.address.socket_address.port_value = options.adminPort;
  const listener = config.static_resources.listeners[0];
  listener.address.socket_address.port_value = options.listenPort;
  const manager = listener.filter_chains[0].filters[0].typed_config;
  const transcoder = manager.http_filters.find((filter: { name: string }) => filter.name === "envoy.filters.http.grpc_json_transcoder").typed_config;
  const routes: unknown[] = [];
  const routedPaths = new Set<string>();
  const publicPaths: string[] = [];
  const clusters = config.static_resources.clusters;

  const exposed = exposedServices(model);
  transcoder.proto_descriptor = options.descriptorPath;
  transcoder.services = exposed.flatMap((service) => service.grpcServices);
  for (const service of exposed) {
    const ports = [options.upstreamPorts[service.name] ?? []].flat();
    if (ports.length === 0) throw new Error(`no upstream port for ${service.name}`);
    // After transcoding every request is POST /<pkg>.<Service>/<Method>,
    // so one exact route per RPC serves REST and gRPC alike. Only RPCs
    // reachable from outside get one: internal RPCs answer 404 (gRPC
    // UNIMPLEMENTED) here and never reach a service, whatever token comes
    // with them.
    for (const rpc of service.rpcs.filter((candidate) => candidate.edge)) {
      routedPaths.add(rpc.path);
      routes.push({
        match: { path: rpc.path },
        route: {
          cluster: service.name,
          timeout: "15s",
          retry_policy: retryPolicy(rpc),
          // Envoy enforces a client's grpc-timeout itself (capped at 15 s;
          // an unparsable one counts as absent) and does not pass the header
          // on: grpc-js answered a malformed grpc-timeout (e.g. sent with a
          // REST request) with INTERNAL, a 500. The service still learns of
          // an expired deadline: Envoy resets the call.
          max_stream_duration: { grpc_timeout_header_max: "15s" },
        },
        request_headers_to_remove: ["grpc-timeout"],
      });
    }
    clusters.push(upstreamCluster(service.name, ports, upstreamTls(model, service.name, sdsLocation(model, options))));
    publicPaths.push(...service.rpcs.filter((rpc) => rpc.access?.public).map((rpc) => rpc.path));
  }
  for (const path of options.extraPublicPaths ?? []) {
    if (!routedPaths.has(path)) throw new Error(`extra public path ${path} is not an RPC the edge routes`);
    publicPaths.push(path);
  }
  configureJwtAuthn(manager, publicPaths, options.listenPort, model.identity);
  clusters.push({
    // Envoy fetches the JWKS through its own listener (GET /.well-known/jwks.json, transcoded to the auth service).
    name: "ingress_self",
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: "ingress_self",
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: options.listenPort } } } }] }],
    },
  });
  // gRPC routes go before the base file's catch-all /api/ route.
  manager.route_config.virtual_hosts[0].routes.unshift(...routes);
  return `# GENERATED by scripts/mesh/envoy-config.ts from envoy/ingress.base.yaml and mesh/topology.yaml; do not edit.\n${stringify(config, { lineWidth: 0 })}`;
}

/**
 * Fills the jwt_authn filter: RPCs declared public in proto/ need no token,
 * every other transcoded or gRPC path needs a valid one. The filter runs
 * after the transcoder, so it matches gRPC paths for REST and gRPC alike.
 */
function configureJwtAuthn(
  manager: { http_filters: { name: string; typed_config: unknown }[] },
  publicPaths: string[],
  listenPort: number,
  identity: MeshModel["identity"],
) {
  const filter = manager.http_filters.find((candidate) => candidate.name === "envoy.filters.http.jwt_authn");
  if (!filter) throw new Error("envoy/ingress.base.yaml has no envoy.filters.http.jwt_authn filter");
  // The parts of JwtAuthentication the renderer fills; the rest stays as the base file has it.
  const jwt = filter.typed_config as {
    providers: { leadmesh: { issuer: string; audiences: string[]; remote_jwks: { http_uri: { uri: string } } } };
    rules: unknown[];
  };
  jwt.providers.leadmesh.issuer = identity.issuer;
  jwt.providers.leadmesh.audiences = [identity.audience];
  jwt.providers.leadmesh.remote_jwks.http_uri.uri = `http://127.0.0.1:${listenPort}/.well-known/jwks.json`;
  jwt.rules = [
    ...[...new Set(publicPaths)].sort().map((path) => ({ match: { path } })),
    { match: { prefix: "/grpc.health.v1.Health/" } },
    { match: { prefix: "/" }, requires: { provider_name: "leadmesh" } },
  ];
}

/** Safe to send twice: bound to a REST GET, or declared `idempotency_level` in proto/. */
export function isIdempotent(rpc: Pick<MethodContract, "retryable" | "http">): boolean {
  return rpc.retryable || rpc.http.some((binding) => binding.verb === "get");
}

/**
 * Retries that make one replica dying invisible to clients, without ever
 * running a side effect twice. Idempotent calls are retried on whatever a
 * dead or draining replica causes: refused or reset connections, streams
 * reset mid-call (also a per-try timeout), and UNAVAILABLE (a replica
 * shutting down or briefly unable to serve). Other calls are retried only
 * when the request surely never reached a service. CANCELLED is not
 * retried: a service never answers it for its own failure, only when the
 * call was cancelled, and a cancelled call must stay cancelled.
 * previous_hosts sends each retry to another replica than the ones tried.
 */
export function retryPolicy(rpc: Pick<MethodContract, "retryable" | "http">) {
  const common = {
    num_retries: 2,
    retry_host_predicate: [
      {
        name: "envoy.retry_host_predicates.previous_hosts",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" },
      },
    ],
    host_selection_retry_max_attempts: 3,
  };
  return isIdempotent(rpc)
    ? { retry_on: "connect-failure,refused-stream,reset,unavailable", ...common, per_try_timeout: "5s" }
    : { retry_on: "connect-failure,refused-stream,reset-before-request", ...common };
}

export { spiffeIdOf } from "./model";

/** Identity name of the Envoy edge (its certificate's file stem). */
export function edgeIdentity(model: MeshModel): string {
  return model.mesh.edge;
}

/**
 * mTLS to an upstream service: Envoy presents the edge's identity and accepts
 * only a certificate from the mesh CA that carries the service's SPIFFE id
 * (another service's certificate, or any other name the CA signed, fails the
 * handshake: 503 / UNAVAILABLE). Certificate and CA come through file-based
 * SDS, so a renewal reaches new connections without a restart. ALPN h2: the
 * services speak gRPC only, and grpc-js refuses a TLS connection without it.
 */
export function upstreamTls(model: MeshModel, service: string, location: EnvoySdsLocation) {
  const sds = envoySdsFiles(location);
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      common_tls_context: {
        alpn_protocols: ["h2"],
        tls_certificate_sds_secret_configs: [sdsSecretConfig(EDGE_CERTIFICATE_SECRET, sds.certificateFile)],
        combined_validation_context: {
          // Per cluster: the one SPIFFE id this upstream must present.
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: "URI", matcher: { exact: spiffeIdOf(model, service) } }] },
          // Shared: the CA, renewed with the certificates.
          validation_context_sds_secret_config: sdsSecretConfig(MESH_CA_SECRET, sds.trustedCaFile),
        },
      },
    },
  };
}

/** Where the rendered config reads certificates and SDS files from. */
export function sdsLocation(model: MeshModel, options: Pick<EnvoyRenderOptions, "tlsDir" | "sdsDir">): EnvoySdsLocation {
  return { tlsDir: options.tlsDir, sdsDir: options.sdsDir ?? options.tlsDir, edge: edgeIdentity(model) };
}

function upstreamCluster(name: string, ports: number[], transportSocket: ReturnType<typeof upstreamTls>) {
  return {
    name,
    // Active health checks use this socket too: they prove the TLS handshake (both identities) as well as SERVING.
    transport_socket: transportSocket,
    type: "STATIC",
    connect_timeout: "1s",
    lb_policy: "ROUND_ROBIN",
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } })) }],
    },
    // grpc.health.v1 on each replica's main port every 0.5 s: NOT_SERVING
    // (a dependency is down, or the replica is draining) takes it out of
    // rotation at once; an unreachable one after two failed checks, so one
    // slow answer under load does not. One passing check brings a replica
    // back (a restarted one within 0.5 s of reporting SERVING).
    health_checks: [
      {
        timeout: "1s",
        interval: "0.5s",
        no_traffic_interval: "0.5s",
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        grpc_health_check: { service_name: "" },
      },
    ],
    // Without panic mode Envoy answers 503 at once when no host is healthy,
    // instead of sending traffic to a host it knows cannot serve it.
    common_lb_config: { healthy_panic_threshold: { value: 0 } },
    // Envoy allows only 3 retries in flight per cluster by default: when a
    // replica dies under load, more requests than that need their retry at
    // the same moment, and the rest would fail. A budget scales with the
    // traffic instead: half of the active requests (one of two replicas
    // gone), and at least 16 at a time.
    circuit_breakers: {
      thresholds: [{ priority: "DEFAULT", retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 16 } }],
    },
    // Passive detection is faster than the health check: the first refused
    // or reset connection (locally originated, counted apart from the
    // replica's own answers) ejects a killed replica, so new requests stop
    // going there before the next check. A passing health check unejects
    // (successful_active_health_check_uneject_host, on by default), so an
    // ejection never outlasts the replica's recovery.
    outlier_detection: {
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: 1,
      enforcing_consecutive_local_origin_failure: 100,
      consecutive_gateway_failure: 3,
      enforcing_consecutive_gateway_failure: 100,
      consecutive_5xx: 5,
      interval: "1s",
      // Short: a passing health check unejects a host only after the check
      // had marked it unhealthy, and a replica restarted within one check
      // round never is; it would sit out the whole ejection. A replica that
      // stays dead is kept out by the health check instead.
      base_ejection_time: "1s",
      max_ejection_time: "30s",
      max_ejection_percent: 100,
    },
  };
}

export const LOCAL_ENVOY_CONFIG = join(REPO_ROOT, "envoy", "ingress.local.yaml");
/** `npm start`'s certificate directory, relative to the repository root (Envoy's working directory). */
export const LOCAL_TLS_DIR = ".run/tls";
/**
 * The committed local config's SDS files, committed next to it (they only
 * name files in LOCAL_TLS_DIR): `envoy --mode validate` reads SDS files
 * but not the certificates, so the committed config validates on a fresh
 * checkout.
 */
export const LOCAL_SDS_DIR = "envoy/sds";

/** The SDS files of the committed local config, by path relative to the repository root. */
export function renderLocalEnvoySdsFiles(model = loadMeshModel()): Record<string, string> {
  return renderEnvoySdsFiles(sdsLocation(model, { tlsDir: LOCAL_TLS_DIR, sdsDir: LOCAL_SDS_DIR }));
}

/** The config for the default local ports, as committed in envoy/ingress.local.yaml. */
export function renderLocalEnvoyConfig(model = loadMeshModel()): string {
  return renderEnvoyConfig(model, {
    listenPort: model.ingress.local.listen,
    adminPort: model.ingress.local.admin,
    upstreamPorts: Object.fromEntries(model.services.map((service) => [service.name, service.localReplicaPorts.map((ports) => ports.grpc)])),
    descriptorPath: relative(REPO_ROOT, DESCRIPTOR_PATH),
    tlsDir: LOCAL_TLS_DIR,
    sdsDir: LOCAL_SDS_DIR,
  });
}

if (require.main === module) {
  const model = loadMeshModel();
  writeFileSync(LOCAL_ENVOY_CONFIG, renderLocalEnvoyConfig(model));
  console.log(`wrote ${relative(REPO_ROOT, LOCAL_ENVOY_CONFIG)}`);
  mkdirSync(join(REPO_ROOT, LOCAL_SDS_DIR), { recursive: true });
  for (const [file, content] of Object.entries(renderLocalEnvoySdsFiles(model))) {
    writeFileSync(join(REPO_ROOT, file), content);
    console.log(`wrote ${file}`);
  }
}
