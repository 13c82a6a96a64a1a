/**
 * SPIFFE ids as Istio issues them: `spiffe://<trust domain>/ns/<namespace>/sa/<name>`.
 * A workload certificate carries its id as its one URI SAN.
 */

export interface SpiffeScope {
  trustDomain: string;
  namespace: string;
}

export interface ParsedSpiffeId extends SpiffeScope {
  /** The service account (identity) name. */
  name: string;
}

const SPIFFE_ID = /^spiffe:\/\/([a-z0-9.-]+)\/ns\/([a-z0-9-]+)\/sa\/([a-z0-9.-]+)$/;

export function spiffeId(scope: SpiffeScope, name: string): string {
  return `spiffe://${scope.trustDomain}/ns/${scope.namespace}/sa/${name}`;
}

/** The parts of a `spiffe://td/ns/<ns>/sa/<name>` id; undefined for any other form. */
export function parseSpiffeId(id: string): ParsedSpiffeId | undefined {
  const match = SPIFFE_ID.exec(id);
  return match ? { trustDomain: match[1], namespace: match[2], name: match[3] } : undefined;
}

/** How a peer is named in logs and to callers: its `sa` name when it is in our trust domain and namespace, else its whole id. */
export function identityName(id: string, scope: SpiffeScope): string {
  const parsed = parseSpiffeId(id);
  return parsed && parsed.trustDomain === scope.trustDomain && parsed.namespace === scope.namespace ? parsed.name : id;
}

/**
 * The entries of a certificate's subjectAltName as Node prints it
 * (`URI:spiffe://…, DNS:localhost, IP Address:127.0.0.1`). Node quotes a
 * value that contains a comma or other unusual characters as a JSON string.
 */
export function subjectAltNames(text: string | undefined): { type: string; value: string }[] {
  if (!text) return [];
  const entries: { type: string; value: string }[] = [];
  const pattern = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const match of text.matchAll(pattern)) {
    const raw = match[2];
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw;
      }
    }
    entries.push({ type: match[1], value });
  }
  return entries;
}

/** The SPIFFE id of a certificate: its one URI SAN starting spiffe://; undefined when it has none or several (the SPIFFE spec allows exactly one). */
export function spiffeIdOfCertificate(subjectAltName: string | undefined): string | undefined {
  const ids = subjectAltNames(subjectAltName).filter((entry) => entry.type === "URI" && entry.value.startsWith("spiffe://"));
  return ids.length === 1 ? ids[0].value : undefined;
}
