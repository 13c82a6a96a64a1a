/**
 * What proto/ declares about each RPC, read from the buf descriptor set with
 * @bufbuild/protobuf's registry and its extension API: the access rule
 * (`common.v1.access`), the REST binding (`google.api.http`), the idempotency
 * level and the request/response message descriptors. The kernel (access
 * rules, error texts), the mesh model (Envoy routes, retries, authorization
 * matrix) and the generated-input tests all read these facts here, so no one
 * decodes custom options by hand.
 */
import { readFileSync } from "node:fs";
import {
  createFileRegistry,
  type DescExtension,
  type DescMessage,
  type DescMethod,
  type DescService,
  type FileRegistry,
  fromBinary,
  getOption,
  hasOption,
  type Message,
  toBinary,
} from "@bufbuild/protobuf";
import type { GenExtension } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorSetSchema, type MethodOptions } from "@bufbuild/protobuf/wkt";
import { AccessRule } from "@leadmesh/contracts/common/v1/access";

export type HttpVerb = "get" | "post" | "put" | "patch" | "delete";

export interface HttpBinding {
  verb: HttpVerb;
  /** Path template, e.g. "/api/v1/leads/{lead.id}". */
  pattern: string;
  /** Request field carried in the body: "" (none), "*" (all) or a field name. */
  body: string;
  /** Proto field paths bound from the URL path, e.g. ["lead.id"]. */
  pathFields: string[];
}

/** google.protobuf.MethodOptions.IdempotencyLevel, by name. */
export type Idempotency = "UNKNOWN" | "NO_SIDE_EFFECTS" | "IDEMPOTENT";
const IDEMPOTENCY: Idempotency[] = ["UNKNOWN", "NO_SIDE_EFFECTS", "IDEMPOTENT"];

export interface MethodContract {
  /** gRPC path, "/pkg.Service/Method". */
  path: string;
  /** Proto package, e.g. "leads.v1". */
  protoPackage: string;
  /** Fully-qualified service, e.g. "leads.v1.LeadService". */
  service: string;
  /** Method name as declared, e.g. "GetLead". */
  method: string;
  access: AccessRule | undefined;
  /** Primary binding followed by additional_bindings; empty when not exposed over REST. */
  http: HttpBinding[];
  idempotency: Idempotency;
  /** Safe for a proxy or client to retry (NO_SIDE_EFFECTS or IDEMPOTENT). */
  retryable: boolean;
  clientStreaming: boolean;
  serverStreaming: boolean;
  input: DescMessage;
  output: DescMessage;
  descriptor: DescMethod;
}

export class Contracts {
  readonly registry: FileRegistry;
  private readonly byPath = new Map<string, MethodContract>();
  private readonly accessExtension: DescExtension;
  private readonly httpExtension: DescExtension;

  constructor(descriptorSet: Uint8Array) {
    this.registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptorSet));
    this.accessExtension = this.extension("common.v1.access");
    this.httpExtension = this.extension("google.api.http");
    for (const service of this.services()) {
      for (const method of service.methods) this.byPath.set(`/${service.typeName}/${method.name}`, this.describe(service, method));
    }
  }

  /** Every gRPC service in the descriptor set, sorted by name. */
  services(): DescService[] {
    const services: DescService[] = [];
    for (const type of this.registry) if (type.kind === "service") services.push(type);
    return services.sort((a, b) => a.typeName.localeCompare(b.typeName));
  }

  /** Fully-qualified names of the services of a proto package ("leads.v1"). */
  servicesOfPackage(protoPackage: string): string[] {
    return this.services()
      .filter((service) => service.file.proto.package === protoPackage)
      .map((service) => service.typeName);
  }

  methodsOfPackage(protoPackage: string): MethodContract[] {
    return [...this.byPath.values()].filter((method) => method.protoPackage === protoPackage);
  }

  methodsOfService(serviceName: string): MethodContract[] {
    return [...this.byPath.values()].filter((method) => method.service === serviceName);
  }

  method(path: string): MethodContract | undefined {
    return this.byPath.get(path);
  }

  private extension(name: string): DescExtension {
    const extension = this.registry.getExtension(name);
    if (!extension) throw new Error(`descriptor set lacks the ${name} extension: regenerate it with 'npm run generate'`);
    return extension;
  }

  private describe(service: DescService, method: DescMethod): MethodContract {
    const idempotency = IDEMPOTENCY[method.idempotency] ?? "UNKNOWN";
    return {
      path: `/${service.typeName}/${method.name}`,
      protoPackage: service.file.proto.package,
      service: service.typeName,
      method: method.name,
      access: this.accessRule(method),
      http: this.httpBindings(method),
      idempotency,
      retryable: idempotency !== "UNKNOWN",
      clientStreaming: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      serverStreaming: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      input: method.input,
      output: method.output,
      descriptor: method,
    };
  }

  private accessRule(method: DescMethod): AccessRule | undefined {
    const extension = asMethodOption<Message>(this.accessExtension);
    if (!hasOption(method, extension)) return undefined;
    const value = getOption(method, extension);
    // Re-encoded into the ts-proto type every service already uses.
    const schema = this.registry.getMessage("common.v1.AccessRule");
    if (!schema) throw new Error("descriptor set lacks common.v1.AccessRule: regenerate it with 'npm run generate'");
    return AccessRule.decode(toBinary(schema, value));
  }

  private httpBindings(method: DescMethod): HttpBinding[] {
    const extension = asMethodOption<HttpRuleValue>(this.httpExtension);
    if (!hasOption(method, extension)) return [];
    const rule = getOption(method, extension);
    return [rule, ...(rule.additionalBindings ?? [])].map(toBinding).filter((binding): binding is HttpBinding => binding !== undefined);
  }
}

/** A registry extension descriptor used where generated extension code would be (same runtime shape). */
function asMethodOption<V>(extension: DescExtension): GenExtension<MethodOptions, V> {
  return extension as unknown as GenExtension<MethodOptions, V>;
}

/** The reflective shape of google.api.HttpRule as @bufbuild/protobuf hands it out. */
interface HttpRuleValue {
  pattern: { case: string | undefined; value?: unknown };
  body: string;
  additionalBindings?: HttpRuleValue[];
}

function toBinding(rule: HttpRuleValue): HttpBinding | undefined {
  const verb = rule.pattern.case;
  if (verb !== "get" && verb !== "post" && verb !== "put" && verb !== "patch" && verb !== "delete") return undefined;
  const pattern = String(rule.pattern.value);
  const pathFields = [...pattern.matchAll(/\{([A-Za-z0-9_.]+)(?:=[^}]*)?\}/g)].map((match) => match[1]);
  return { verb, pattern, body: rule.body, pathFields };
}

let defaultContracts: Contracts | undefined;

/** The contracts of this build (services/contracts/descriptor/leadmesh.binpb), read once. */
export function contracts(): Contracts {
  defaultContracts ??= new Contracts(readFileSync(descriptorSetPath()));
  return defaultContracts;
}

export function descriptorSetPath(): string {
  return require.resolve("@leadmesh/contracts/descriptor");
}
