/**
 * x-forwarded-client-cert (XFCC), the header Envoy (and so Istio's sidecar)
 * sets to tell the application who the TLS peer was:
 * `By=spiffe://…/sa/leads;Hash=…;Subject="";URI=spiffe://…/sa/auth`.
 * Elements are separated by commas, pairs by semicolons; values may be
 * double-quoted (then `,` `;` `=` inside them are literal and `\"` escapes).
 * Each proxy on the way appends an element, so the last one describes the
 * hop that reached the local sidecar.
 *
 * The earlier elements come from the caller, so the parse is strict: a quote
 * left open (which would swallow the element the sidecar appended after it),
 * a quote in the middle of a value, text after a closing quote, or a key
 * given twice in one element makes the whole header malformed, and then it
 * names nobody.
 */

export type XfccElement = Record<string, string>;

/** The header's elements, or undefined when it is malformed. */
export function parseXfcc(header: string): XfccElement[] | undefined {
  const elements: XfccElement[] = [];
  let element: XfccElement = {};
  let key = "";
  let value = "";
  let inKey = true;
  let quoted = false;
  let closedQuote = false;
  let malformed = false;
  const endPair = () => {
    const name = key.trim();
    if (name !== "") {
      // Keys are case-insensitive (xfccPeerUri reads URI so): uri and URI in one element is ambiguous.
      if (Object.keys(element).some((existing) => existing.toLowerCase() === name.toLowerCase())) malformed = true;
      element[name] = inKey ? "" : closedQuote ? value : value.trim();
    }
    key = "";
    value = "";
    inKey = true;
    closedQuote = false;
  };
  for (let index = 0; index < header.length && !malformed; index++) {
    const char = header[index];
    if (quoted) {
      if (char === "\\" && index + 1 < header.length) value += header[++index];
      else if (char === '"') {
        quoted = false;
        closedQuote = true;
      } else value += char;
      continue;
    }
    if (char === ";") endPair();
    else if (char === ",") {
      endPair();
      if (Object.keys(element).length > 0) elements.push(element);
      element = {};
    } else if (closedQuote) {
      if (char.trim() !== "") malformed = true;
    } else if (char === '"') {
      if (inKey || value.trim() !== "") malformed = true;
      quoted = true;
      value = "";
    } else if (char === "=" && inKey) inKey = false;
    else if (inKey) key += char;
    else value += char;
  }
  if (quoted || malformed) return undefined;
  endPair();
  if (malformed) return undefined;
  if (Object.keys(element).length > 0) elements.push(element);
  return elements;
}

/** The `URI=` of the last element: the SPIFFE id of the peer that reached the local sidecar; undefined when that element has none. */
export function xfccPeerUri(header: string): string | undefined {
  const last = parseXfcc(header)?.at(-1) ?? {};
  // Envoy writes "URI"; keys are matched without regard to case like HTTP header names.
  const uri = Object.entries(last).find(([key]) => key.toUpperCase() === "URI")?.[1];
  return uri === undefined || uri === "" ? undefined : uri;
}
