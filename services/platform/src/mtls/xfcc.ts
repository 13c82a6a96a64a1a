/**
 * x-forwarded-client-cert (XFCC), the header Envoy (and so Istio's sidecar)
 * sets to tell the application who the TLS peer was:
 * `By=spiffe://…/sa/leads;Hash=…;Subject="";URI=spiffe://…/sa/auth`.
 * Elements are separated by commas, pairs by semicolons; values may be
 * double-quoted (then `,` `;` `=` inside them are literal and `\"` escapes).
 * Each proxy on the way appends an element, so the last one describes the
 * hop that reached the local sidecar.
 */

export type XfccElement = Record<string, string>;

export function parseXfcc(header: string): XfccElement[] {
  const elements: XfccElement[] = [];
  let element: XfccElement = {};
  let key = "";
  let value = "";
  let inKey = true;
  let quoted = false;
  const endPair = () => {
    const name = key.trim();
    if (name !== "") element[name] = inKey ? "" : value.trim();
    key = "";
    value = "";
    inKey = true;
  };
  for (let index = 0; index < header.length; index++) {
    const char = header[index];
    if (quoted) {
      if (char === "\\" && index + 1 < header.length) value += header[++index];
      else if (char === '"') quoted = false;
      else value += char;
      continue;
    }
    if (char === '"' && !inKey) quoted = true;
    else if (char === "=" && inKey) inKey = false;
    else if (char === ";") endPair();
    else if (char === ",") {
      endPair();
      if (Object.keys(element).length > 0) elements.push(element);
      element = {};
    } else if (inKey) key += char;
    else value += char;
  }
  endPair();
  if (Object.keys(element).length > 0) elements.push(element);
  return elements;
}

/** The `URI=` of the last element: the SPIFFE id of the peer that reached the local sidecar; undefined when that element has none. */
export function xfccPeerUri(header: string): string | undefined {
  const last = parseXfcc(header).at(-1) ?? {};
  // Envoy writes "URI"; keys are matched without regard to case like HTTP header names.
  const uri = Object.entries(last).find(([key]) => key.toUpperCase() === "URI")?.[1];
  return uri === undefined || uri === "" ? undefined : uri;
}
