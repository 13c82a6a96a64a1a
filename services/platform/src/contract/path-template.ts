/**
 * google.api.http path templates ("/api/v1/users/{id}:changeRoles",
 * "/api/v1/leads/{lead.id}") matched against a concrete REST path, giving
 * the raw (still percent-encoded) value of each variable. The grammar is
 * google/api/http.proto's:
 *
 *   Template = "/" Segments [ Verb ] ;
 *   Segments = Segment { "/" Segment } ;
 *   Segment  = "*" | "**" | LITERAL | Variable ;
 *   Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *   Verb     = ":" LITERAL ;
 */

export interface PathTemplate {
  pattern: string;
  /** Field paths of the variables, in capture order. */
  fields: string[];
  regex: RegExp;
}

export function compilePathTemplate(pattern: string): PathTemplate {
  const { segments, verb } = splitVerb(pattern);
  const fields: string[] = [];
  const parts = splitOutsideBraces(segments.replace(/^\//, ""), "/").map((segment) => {
    const variable = /^\{([A-Za-z0-9_.]+)(?:=(.*))?\}$/.exec(segment);
    if (!variable) return segmentRegex(segment);
    fields.push(variable[1]);
    const inner = variable[2] === undefined ? "[^/]+" : splitOutsideBraces(variable[2], "/").map(segmentRegex).join("/");
    return `(${inner})`;
  });
  // Envoy's transcoder also routes a path with a trailing slash ("/api/v1/users/u1/") to the binding.
  const source = `^/${parts.join("/")}${verb === undefined ? "" : `:${escapeRegex(verb)}`}/?$`;
  return { pattern, fields, regex: new RegExp(source) };
}

/** The raw value of each variable by field path, or undefined when `path` (without its query) does not match. */
export function matchPathTemplate(template: PathTemplate, path: string): Map<string, string> | undefined {
  const match = template.regex.exec(path);
  if (!match) return undefined;
  return new Map(template.fields.map((field, index) => [field, match[index + 1]]));
}

function segmentRegex(segment: string): string {
  if (segment === "*") return "[^/]+";
  if (segment === "**") return ".+";
  return escapeRegex(segment);
}

/** The verb is a ":" after the last "/" outside a variable ("{name=**}:verb"). */
function splitVerb(pattern: string): { segments: string; verb?: string } {
  let depth = 0;
  let lastSlash = -1;
  let colon = -1;
  for (let index = 0; index < pattern.length; index += 1) {
    const char = pattern[index];
    if (char === "{") depth += 1;
    else if (char === "}") depth -= 1;
    else if (depth === 0 && char === "/") lastSlash = index;
    else if (depth === 0 && char === ":") colon = index;
  }
  return colon > lastSlash ? { segments: pattern.slice(0, colon), verb: pattern.slice(colon + 1) } : { segments: pattern };
}

function splitOutsideBraces(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "{") depth += 1;
    if (char === "}") depth -= 1;
    if (char === separator && depth === 0) {
      parts.push(current);
      current = "";
    } else current += char;
  }
  parts.push(current);
  return parts;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
