/**
 * Configuration from environment variables, validated once at start.
 *
 * Every bad or missing value is collected and reported together in one
 * ConfigError, so an operator fixes a deployment in one go instead of
 * discovering problems one restart at a time.
 */

export type EnvSource = Record<string, string | undefined>;

interface FieldSpec<T> {
  /** Environment variable name. */
  env: string;
  /** What the value means, shown in error messages. */
  description: string;
  /** Used when the variable is unset or empty; no default makes it required. */
  default?: T;
  parse(raw: string): T;
  /** Human description of accepted values for the error message. */
  expected: string;
}

export type ConfigSpec<C> = { [K in keyof C]: FieldSpec<C[K]> };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

export function loadConfig<C>(spec: ConfigSpec<C>, env: EnvSource = process.env): C {
  const problems: string[] = [];
  const result = {} as C;
  for (const key of Object.keys(spec) as (keyof C)[]) {
    const field = spec[key];
    const raw = env[field.env]?.trim();
    if (raw === undefined || raw === "") {
      if (field.default === undefined) {
        problems.push(`${field.env} is required (${field.description}; expected ${field.expected})`);
      } else {
        result[key] = field.default;
      }
      continue;
    }
    try {
      result[key] = field.parse(raw);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      problems.push(`${field.env}=${JSON.stringify(raw)} is invalid: ${reason} (${field.description}; expected ${field.expected})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return result;
}

type Options<T> = { env: string; description: string; default?: T };

export const config = {
  string(options: Options<string> & { pattern?: RegExp }): FieldSpec<string> {
    return {
      ...options,
      expected: options.pattern ? `a string matching ${options.pattern}` : "a non-empty string",
      parse(raw) {
        if (options.pattern && !options.pattern.test(raw)) throw new Error(`does not match ${options.pattern}`);
        return raw;
      },
    };
  },
  port(options: Options<number>): FieldSpec<number> {
    return {
      ...options,
      expected: "a TCP port 0-65535 (0 picks a free port)",
      parse(raw) {
        const port = Number(raw);
        if (!/^\d+$/.test(raw) || port > 65535) throw new Error("not a port number");
        return port;
      },
    };
  },
  integer(options: Options<number> & { min: number; max: number }): FieldSpec<number> {
    return {
      ...options,
      expected: `an integer from ${options.min} to ${options.max}`,
      parse(raw) {
        const value = Number(raw);
        if (!/^-?\d+$/.test(raw) || value < options.min || value > options.max) throw new Error("out of range");
        return value;
      },
    };
  },
  url(options: Options<string> & { protocols: string[] }): FieldSpec<string> {
    return {
      ...options,
      expected: `a URL with scheme ${options.protocols.join(" or ")}`,
      parse(raw) {
        let url: URL;
        try {
          url = new URL(raw);
        } catch {
          throw new Error("not a URL");
        }
        if (!options.protocols.includes(url.protocol.replace(/:$/, ""))) throw new Error(`scheme ${url.protocol} not allowed`);
        return raw;
      },
    };
  },
  oneOf<T extends string>(options: Options<T> & { values: readonly T[] }): FieldSpec<T> {
    return {
      ...options,
      expected: `one of ${options.values.join(", ")}`,
      parse(raw) {
        if (!(options.values as readonly string[]).includes(raw)) throw new Error("unknown value");
        return raw as T;
      },
    };
  },
  boolean(options: Options<boolean>): FieldSpec<boolean> {
    return {
      ...options,
      expected: "true or false",
      parse(raw) {
        if (raw !== "true" && raw !== "false") throw new Error("not a boolean");
        return raw === "true";
      },
    };
  },
  list(options: Options<string[]> & { pattern: RegExp }): FieldSpec<string[]> {
    return {
      ...options,
      expected: `a comma-separated list of values matching ${options.pattern}`,
      parse(raw) {
        const items = raw
          .split(",")
          .map((item) => item.trim())
          .filter((item) => item !== "");
        const bad = items.find((item) => !options.pattern.test(item));
        if (bad !== undefined) throw new Error(`"${bad}" does not match ${options.pattern}`);
        return items;
      },
    };
  },
};
