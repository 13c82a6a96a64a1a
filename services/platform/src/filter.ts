/**
 * AIP-160 list filters, the subset the frontend needs: comparisons
 * (= != < <= > >=) on declared fields, combined with AND (explicit or by
 * juxtaposition), OR, NOT and parentheses. As in AIP-160, OR binds tighter
 * than AND: `a = 1 AND b = 2 OR b = 3` means `a = 1 AND (b = 2 OR b = 3)`.
 *
 * Filters compile to MongoDB query documents restricted to declared fields,
 * so a filter can never reach a field the service did not expose.
 */
import { InvalidArgumentError } from "./errors";

export type FilterFieldType =
  | { kind: "string" }
  | { kind: "integer" }
  | { kind: "timestamp" }
  | { kind: "boolean" }
  /** `values` maps each accepted literal (e.g. NEW, LEAD_STATUS_NEW) to the stored value. */
  | { kind: "enum"; values: ReadonlyMap<string, string> };

export interface FilterField {
  /** Document path in the collection. */
  path: string;
  type: FilterFieldType;
}

export type FilterFields = Readonly<Record<string, FilterField>>;

type Operator = "=" | "!=" | "<" | "<=" | ">" | ">=";
type Token =
  | { kind: "ident"; text: string; at: number }
  | { kind: "string"; text: string; at: number }
  | { kind: "number"; text: string; at: number }
  | { kind: "op"; text: Operator; at: number }
  | { kind: "lparen" | "rparen" | "and" | "or" | "not"; at: number };

export type MongoQuery = Record<string, unknown>;

const MAX_FILTER_LENGTH = 2000;
const MAX_TERMS = 50;

export function compileFilter(filter: string, fields: FilterFields, field = "filter"): MongoQuery {
  const text = filter.trim();
  if (text === "") return {};
  const fail = (description: string): never => {
    throw new InvalidArgumentError([{ field, description }]);
  };
  if (text.length > MAX_FILTER_LENGTH) fail(`is longer than ${MAX_FILTER_LENGTH} characters`);
  const tokens = tokenize(text, fail);
  let position = 0;
  let terms = 0;
  const peek = () => tokens[position];
  const describe = (token: Token | undefined) => (token ? `at offset ${token.at}` : "at the end");

  const expression = (): MongoQuery => {
    const parts = [factor()];
    for (;;) {
      const next = peek();
      if (next?.kind === "and") {
        position++;
        parts.push(factor());
      } else if (next && (next.kind === "ident" || next.kind === "lparen" || next.kind === "not")) {
        parts.push(factor());
      } else break;
    }
    return parts.length === 1 ? parts[0] : { $and: parts };
  };
  const factor = (): MongoQuery => {
    const parts = [primary()];
    while (peek()?.kind === "or") {
      position++;
      parts.push(primary());
    }
    return parts.length === 1 ? parts[0] : { $or: parts };
  };
  const primary = (): MongoQuery => {
    const token = peek();
    if (!token) return fail("ends where a comparison was expected");
    if (token.kind === "not") {
      position++;
      return { $nor: [primary()] };
    }
    if (token.kind === "lparen") {
      position++;
      const inner = expression();
      if (peek()?.kind !== "rparen") fail(`expected ")" ${describe(peek())}`);
      position++;
      return inner;
    }
    if (token.kind !== "ident") return fail(`expected a field name ${describe(token)}`);
    position++;
    if (++terms > MAX_TERMS) fail(`has more than ${MAX_TERMS} comparisons`);
    const declared = fields[token.text];
    if (!declared) fail(`field "${token.text}" cannot be filtered on; allowed: ${Object.keys(fields).join(", ")}`);
    const operator = peek();
    if (operator?.kind !== "op") return fail(`expected a comparison operator after "${token.text}" ${describe(operator)}`);
    position++;
    const literal = peek();
    if (!literal || (literal.kind !== "ident" && literal.kind !== "string" && literal.kind !== "number")) {
      return fail(`expected a value after "${token.text} ${operator.text}" ${describe(literal)}`);
    }
    position++;
    const value = convertValue(token.text, declared.type, literal.text, operator.text, fail);
    return { [declared.path]: mongoComparison(operator.text, value) };
  };

  const query = expression();
  if (position < tokens.length) fail(`unexpected input ${describe(peek())}`);
  return query;
}

function mongoComparison(operator: Operator, value: unknown): unknown {
  switch (operator) {
    case "=":
      return { $eq: value };
    case "!=":
      return { $ne: value };
    case "<":
      return { $lt: value };
    case "<=":
      return { $lte: value };
    case ">":
      return { $gt: value };
    case ">=":
      return { $gte: value };
  }
}

function convertValue(name: string, type: FilterFieldType, raw: string, operator: Operator, fail: (d: string) => never): unknown {
  const ordered = operator !== "=" && operator !== "!=";
  switch (type.kind) {
    case "string":
      return raw;
    case "integer": {
      if (!/^-?\d{1,15}$/.test(raw)) fail(`"${name}" takes an integer, got "${raw}"`);
      return Number(raw);
    }
    case "boolean": {
      if (ordered) fail(`"${name}" only supports = and !=`);
      if (raw !== "true" && raw !== "false") fail(`"${name}" takes true or false, got "${raw}"`);
      return raw === "true";
    }
    case "timestamp": {
      const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(raw) ? new Date(raw) : undefined;
      if (!time || Number.isNaN(time.getTime())) fail(`"${name}" takes an RFC 3339 timestamp such as "2026-01-31T00:00:00Z", got "${raw}"`);
      return time;
    }
    case "enum": {
      if (ordered) fail(`"${name}" only supports = and !=`);
      const stored = type.values.get(raw);
      if (stored === undefined) fail(`"${name}" takes one of ${[...new Set(type.values.values())].join(", ")}, got "${raw}"`);
      return stored;
    }
  }
}

function tokenize(text: string, fail: (d: string) => never): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "(" || c === ")") {
      tokens.push({ kind: c === "(" ? "lparen" : "rparen", at: i });
      i++;
    } else if (c === '"' || c === "'") {
      const start = i++;
      let value = "";
      while (i < text.length && text[i] !== c) {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        value += text[i++];
      }
      if (i >= text.length) fail(`has an unterminated string starting at offset ${start}`);
      i++;
      tokens.push({ kind: "string", text: value, at: start });
    } else if ("=!<>".includes(c)) {
      const two = text.slice(i, i + 2);
      const op = ["!=", "<=", ">="].includes(two) ? two : c;
      if (op === "!") fail(`has a lone "!" at offset ${i}; use != or NOT`);
      tokens.push({ kind: "op", text: op as Operator, at: i });
      i += op.length;
    } else if (/[A-Za-z0-9_.:+-]/.test(c)) {
      const start = i;
      while (i < text.length && /[A-Za-z0-9_.:+-]/.test(text[i])) i++;
      const word = text.slice(start, i);
      if (word === "AND" || word === "OR" || word === "NOT") tokens.push({ kind: word.toLowerCase() as "and" | "or" | "not", at: start });
      else if (/^-?\d+$/.test(word)) tokens.push({ kind: "number", text: word, at: start });
      else tokens.push({ kind: "ident", text: word, at: start });
    } else {
      fail(`has an unexpected character "${c}" at offset ${i}`);
    }
  }
  return tokens;
}

/** Accepted filter literals of a protobuf enum: full names and names without the prefix, minus UNSPECIFIED. */
export function enumFilterValues(enumObject: Record<string, string | number>, prefix: string): ReadonlyMap<string, string> {
  const values = new Map<string, string>();
  for (const name of Object.keys(enumObject)) {
    if (!Number.isNaN(Number(name)) || name.endsWith("_UNSPECIFIED") || name === "UNRECOGNIZED") continue;
    values.set(name, name);
    values.set(name.slice(prefix.length), name);
  }
  return values;
}
