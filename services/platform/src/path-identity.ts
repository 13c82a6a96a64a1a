/**
 * The REST path names the resource (AIP-134). Envoy's gRPC-JSON transcoder
 * builds one request message from the path's variables, the query and the
 * body, and a body (or query) field overrides the path's value: without this
 * check `PATCH /api/v1/users/A` with `{"id":"B"}` reached UpdateUser as an
 * update of B, while URLs and access logs named A.
 *
 * The transcoder rewrites `:path` to the gRPC method and keeps the REST path
 * in `x-envoy-original-path`, replacing any copy the client sent (unlike
 * `x-envoy-original-method`, which it appends to a client's, so the verb is
 * not used). For calls from the edge identity (the only peer whose copy of
 * the header is Envoy's), the kernel matches that path against the RPC's
 * google.api.http bindings from the contracts, and every request field a
 * path variable binds must still hold the path's value: otherwise
 * INVALID_ARGUMENT with a field violation on that field naming both values.
 * A path that matches none of the RPC's bindings is refused too: Envoy
 * routed it here, so it is a spelling the transcoder accepts and the
 * template does not (e.g. a trailing slash, which the matcher allows now),
 * and it must not become a way around the check. Derived from the bindings, so
 * every RPC with a path variable is covered (Update RPCs with
 * `body: "<resource>"`, custom methods with `body: "*"`, a query parameter
 * naming the bound field) without a line in any handler. A body that repeats
 * the path's value, or leaves the field out, passes. Calls that are not
 * transcoded (gRPC clients, services, operators) name their resource in the
 * message only, so there is nothing to compare.
 *
 * Path values are compared raw, percent-decoded, and decoded except reserved
 * characters (the transcoder's default url_unescape_spec), so an id with
 * escapes is never refused for its spelling. Only scalar fields are compared
 * (no proto binds an enum or a message to a path variable).
 */
import type { DescField, DescMessage } from "@bufbuild/protobuf";
import type { Metadata } from "nice-grpc-common";
import { type Contracts, contracts } from "./contract/contracts";
import { compilePathTemplate, matchPathTemplate, type PathTemplate } from "./contract/path-template";
import { type FieldViolation, InvalidArgumentError } from "./errors";
import type { MeshPeer } from "./mtls/peer-access";

export const ORIGINAL_PATH_HEADER = "x-envoy-original-path";

/** How to read a request field a path variable binds from a ts-proto request. */
interface BoundField {
  read(request: unknown): string;
}

interface RpcBindings {
  templates: PathTemplate[];
  fields: Map<string, BoundField>;
}

/** Throws INVALID_ARGUMENT when a transcoded call's request disagrees with its REST path. */
export type PathIdentityCheck = (rpc: string, request: unknown, metadata: Metadata, peer: MeshPeer) => void;

/** The check for the given RPCs (gRPC paths), from their REST bindings in the contracts. */
export function pathIdentityCheck(rpcs: Iterable<string>, source: Contracts = contracts()): PathIdentityCheck {
  const bindings = new Map<string, RpcBindings>();
  for (const rpc of rpcs) {
    const method = source.method(rpc);
    const bound = method?.http.filter((binding) => binding.pathFields.length > 0) ?? [];
    if (!method || bound.length === 0) continue;
    const fields = new Map<string, BoundField>();
    for (const name of new Set(bound.flatMap((binding) => binding.pathFields))) {
      const field = boundField(method.input, name);
      if (field) fields.set(name, field);
    }
    bindings.set(rpc, { templates: bound.map((binding) => compilePathTemplate(binding.pattern)), fields });
  }

  return (rpc, request, metadata, peer) => {
    if (!peer.isEdge) return;
    const rpcBindings = bindings.get(rpc);
    const originalPath = metadata.get(ORIGINAL_PATH_HEADER);
    if (!rpcBindings || !originalPath) return;
    const path = originalPath.split("?", 1)[0];
    for (const template of rpcBindings.templates) {
      const values = matchPathTemplate(template, path);
      if (!values) continue;
      const violations: FieldViolation[] = [];
      for (const [name, raw] of values) {
        const field = rpcBindings.fields.get(name);
        if (field === undefined) continue;
        const actual = field.read(request);
        if (spellingsOf(raw).has(actual)) continue;
        const named = decoded(raw) ?? raw;
        violations.push({
          field: name,
          description: `is "${actual}" in the request but the path names "${named}": leave ${name} out of the body and query, or repeat the path's value`,
        });
      }
      if (violations.length > 0) throw new InvalidArgumentError(violations);
      return;
    }
    // Envoy routed this path here, so a binding matches it; a path that matches none is one the transcoder reads more
    // leniently than the template, and is refused rather than let its body name the resource unchecked.
    const patterns = rpcBindings.templates.map((template) => template.pattern).join(", ");
    throw new InvalidArgumentError(
      [{ field: "", description: `the REST path ${path} matches none of ${rpc}'s paths (${patterns})` }],
      `the REST path ${path} matches none of ${rpc}'s paths (${patterns})`,
    );
  };
}

/** Reads a scalar field at a proto field path ("user.id") of a ts-proto request; undefined for fields not compared. */
function boundField(input: DescMessage, name: string): BoundField | undefined {
  const steps: DescField[] = [];
  let message: DescMessage | undefined = input;
  for (const part of name.split(".")) {
    const field: DescField | undefined = message?.fields.find((candidate) => candidate.name === part);
    if (!field) return undefined;
    steps.push(field);
    message = field.fieldKind === "message" ? field.message : undefined;
  }
  if (steps[steps.length - 1].fieldKind !== "scalar") return undefined;
  const keys = steps.map((step) => step.localName);
  return {
    read: (request) => {
      const value = keys.reduce<unknown>((current, key) => (current as Record<string, unknown> | undefined)?.[key], request);
      // An unset field is its default: the transcoder always sets the path's value, so only the body can have cleared it.
      return value === undefined || value === null ? "" : String(value);
    },
  };
}

/** The values a transcoder can have made of a raw path segment. */
function spellingsOf(raw: string): Set<string> {
  const spellings = new Set([raw, decodedExceptReserved(raw)]);
  const full = decoded(raw);
  if (full !== undefined) spellings.add(full);
  return spellings;
}

function decoded(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** RFC 6570 reserved characters, percent-encoded: the transcoder's default leaves these escaped in single-segment variables. */
const RESERVED_ESCAPE = /(%(?:21|23|24|26|27|28|29|2[AaBbCcFf]|3[AaBbDdFf]|40|5[BbDd]))/;

function decodedExceptReserved(raw: string): string {
  return raw
    .split(RESERVED_ESCAPE)
    .map((part, index) => (index % 2 === 1 ? part : (decoded(part) ?? part)))
    .join("");
}
