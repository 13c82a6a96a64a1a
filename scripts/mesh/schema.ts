/**
 * A small JSON Schema (2020-12) checker for the keywords mesh/*.schema.json
 * use. A schema with any other keyword is refused rather than half-checked,
 * so the schema file never promises a rule nobody enforces. Each problem names
 * the key path ("services.leads.replicas") so the message points at the line.
 */
export type JsonSchema = Record<string, unknown>;

const ANNOTATIONS = new Set(["$schema", "$id", "$defs", "title", "description", "default"]);
const CHECKED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "propertyNames",
  "items",
  "uniqueItems",
  "enum",
  "pattern",
  "minimum",
  "maximum",
  "$ref",
]);

/** Every problem of `value` against `schema` (empty when it conforms). */
export function schemaProblems(value: unknown, schema: JsonSchema): string[] {
  const problems: string[] = [];
  check(value, schema, schema, "", problems);
  return problems;
}

function check(value: unknown, schema: JsonSchema, root: JsonSchema, at: string, problems: string[]): void {
  const here = at === "" ? "(top level)" : at;
  for (const keyword of Object.keys(schema)) {
    if (!CHECKED.has(keyword) && !ANNOTATIONS.has(keyword))
      throw new Error(`schema keyword "${keyword}" at ${here} is not supported by scripts/mesh/schema.ts`);
  }
  if (typeof schema.$ref === "string") check(value, resolve(schema.$ref, root), root, at, problems);
  if (typeof schema.type === "string" && !hasType(value, schema.type)) {
    problems.push(`${here}: must be ${article(schema.type)}, got ${describe(value)}`);
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value))
    problems.push(`${here}: must be one of ${schema.enum.map((item) => JSON.stringify(item)).join(", ")}, got ${describe(value)}`);
  if (typeof value === "string" && typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) {
    problems.push(`${here}: "${value}" does not match ${schema.pattern}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) problems.push(`${here}: must be at least ${schema.minimum}, got ${value}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) problems.push(`${here}: must be at most ${schema.maximum}, got ${value}`);
  }
  if (Array.isArray(value)) checkArray(value, schema, root, at, problems);
  if (isObject(value)) checkObject(value, schema, root, at, problems);
}

function checkArray(value: unknown[], schema: JsonSchema, root: JsonSchema, at: string, problems: string[]): void {
  if (isObject(schema.items)) {
    for (const [index, item] of value.entries()) check(item, schema.items, root, `${at}[${index}]`, problems);
  }
  if (schema.uniqueItems === true) {
    const seen = value.map((item) => JSON.stringify(item));
    const repeated = seen.filter((item, index) => seen.indexOf(item) !== index);
    if (repeated.length > 0) problems.push(`${at === "" ? "(top level)" : at}: lists ${[...new Set(repeated)].join(", ")} more than once`);
  }
}

function checkObject(value: Record<string, unknown>, schema: JsonSchema, root: JsonSchema, at: string, problems: string[]): void {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const path = (key: string) => (at === "" ? key : `${at}.${key}`);
  for (const key of (schema.required ?? []) as string[]) {
    if (!(key in value)) problems.push(`${path(key)}: is required`);
  }
  for (const [key, item] of Object.entries(value)) {
    if (isObject(schema.propertyNames)) {
      const nameProblems: string[] = [];
      check(key, schema.propertyNames, root, path(key), nameProblems);
      problems.push(...nameProblems.map((problem) => `${problem} (key name)`));
    }
    if (key in properties) check(item, properties[key], root, path(key), problems);
    else if (schema.additionalProperties === false) problems.push(`${path(key)}: unknown key (allowed: ${Object.keys(properties).join(", ")})`);
    else if (isObject(schema.additionalProperties)) check(item, schema.additionalProperties, root, path(key), problems);
  }
}

function resolve(ref: string, root: JsonSchema): JsonSchema {
  const match = /^#\/\$defs\/([A-Za-z0-9_-]+)$/.exec(ref);
  const target = match ? (root.$defs as Record<string, JsonSchema> | undefined)?.[match[1]] : undefined;
  if (!target) throw new Error(`schema $ref "${ref}" does not resolve (only "#/$defs/<name>" is supported)`);
  return target;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case "object":
      return isObject(value);
    case "array":
      return Array.isArray(value);
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string":
    case "boolean":
      return typeof value === type;
    default:
      throw new Error(`schema type "${type}" is not supported by scripts/mesh/schema.ts`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}
