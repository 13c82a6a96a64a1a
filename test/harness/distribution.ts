/**
 * Buyers, leads and sales over REST through Envoy, as the frontend drives
 * them: what the distribution tests, the authorization matrix's and the
 * fuzzers' fixtures and the invariant checks share. Every helper takes the
 * caller (`Api`: token and ingress), so a test can act as tenant A or B, on
 * the shared test mesh or a private one. Amounts are REST's int64 strings;
 * the helpers convert them to bigint where they add them up.
 */
import { randomUUID } from "node:crypto";
import { rest } from "./identity";

export interface Api {
  token: string;
  /** Ingress of the mesh; the shared test mesh's by default. */
  baseUrl?: string;
}

/** A REST reply: status and JSON body (google.rpc.Status on errors). */
export type Reply = Awaited<ReturnType<typeof rest>>;

export const CURRENCY = "USD";

const call = (api: Api, method: string, path: string, body?: unknown) => rest(method, path, { token: api.token, baseUrl: api.baseUrl, body });

/** Throws with the request and the reply unless the call answered 200: fixtures must not fail silently. */
export function expectOk(reply: Reply, what: string): Reply {
  if (reply.status !== 200) throw new Error(`${what} failed: HTTP ${reply.status} ${reply.text}`);
  return reply;
}

export interface BuyerFields {
  displayName?: string;
  priceMinor?: number;
  dailyCap?: number;
  monthlyCap?: number;
  criteria?: Record<string, unknown>;
  returnWindow?: string;
  state?: string;
}

/** POST /api/v1/buyers; the buyer as answered. */
export async function createBuyer(api: Api, fields: BuyerFields = {}) {
  const body = {
    displayName: fields.displayName ?? `Buyer ${randomUUID().slice(0, 8)}`,
    contactEmail: "buyer@example.com",
    pricePerLead: { currencyCode: CURRENCY, amountMinor: String(fields.priceMinor ?? 1000) },
    dailyCap: String(fields.dailyCap ?? 0),
    monthlyCap: String(fields.monthlyCap ?? 0),
    ...(fields.criteria ? { criteria: fields.criteria } : {}),
    ...(fields.returnWindow ? { returnWindow: fields.returnWindow } : {}),
    ...(fields.state ? { state: fields.state } : {}),
  };
  return expectOk(await call(api, "POST", "/api/v1/buyers", body), `creating buyer ${body.displayName}`).json.buyer;
}

/** POST /api/v1/buyers/{id}:topUp with a request id (retry-safe); the reply as is. */
export function topUp(api: Api, buyerId: string, amountMinor: number | bigint, requestId: string = randomUUID()) {
  return call(api, "POST", `/api/v1/buyers/${buyerId}:topUp`, { amount: { currencyCode: CURRENCY, amountMinor: String(amountMinor) }, requestId });
}

/** A buyer with `balanceMinor` topped up; the buyer after the top-up. */
export async function fundedBuyer(api: Api, balanceMinor: number, fields: BuyerFields = {}) {
  const buyer = await createBuyer(api, fields);
  if (balanceMinor === 0) return buyer;
  return expectOk(await topUp(api, buyer.id, balanceMinor), `topping up buyer ${buyer.id}`).json.buyer;
}

/** POST /api/v1/leads with status QUALIFIED (distributable); the lead as answered. */
export async function createQualifiedLead(api: Api, fields: Record<string, unknown> = {}) {
  const body = { firstName: "Sale", email: "sale@example.com", source: "LEAD_SOURCE_WEB_FORM", status: "LEAD_STATUS_QUALIFIED", score: 50, ...fields };
  return expectOk(await call(api, "POST", "/api/v1/leads", body), "creating a qualified lead").json.lead;
}

export interface DistributeOptions {
  buyerId?: string;
  requestId?: string;
  validateOnly?: boolean;
}

/** POST /api/v1/leads/{id}:distribute; the reply as is (the tests judge its status). */
export function distribute(api: Api, leadId: string, options: DistributeOptions = {}) {
  return call(api, "POST", `/api/v1/leads/${leadId}:distribute`, options);
}

/** POST /api/v1/sales/{id}:return; the reply as is. */
export function returnSale(api: Api, saleId: string, reason = "LEAD_SALE_RETURN_REASON_INVALID_CONTACT") {
  return call(api, "POST", `/api/v1/sales/${saleId}:return`, { returnReason: reason, returnComment: "phone number does not exist" });
}

export const getBuyer = (api: Api, id: string) => call(api, "GET", `/api/v1/buyers/${id}`);
export const getLead = (api: Api, id: string) => call(api, "GET", `/api/v1/leads/${id}`);
export const getSale = (api: Api, id: string) => call(api, "GET", `/api/v1/sales/${id}`);

/** Every item of a paginated REST list (`field` names the repeated field of the reply). */
async function allPages(api: Api, path: string, field: string, query: Record<string, string> = {}) {
  // biome-ignore lint/suspicious/noExplicitAny: JSON items of any list RPC
  const items: any[] = [];
  let pageToken = "";
  for (let page = 0; page < 1000; page++) {
    const params = new URLSearchParams({ ...query, pageSize: "1000", ...(pageToken ? { pageToken } : {}) });
    const reply = expectOk(await call(api, "GET", `${path}?${params}`), `listing ${path}`);
    items.push(...(reply.json[field] ?? []));
    pageToken = reply.json.nextPageToken ?? "";
    if (!pageToken) return items;
  }
  throw new Error(`${path} kept returning next pages`);
}

/** GET /api/v1/buyers (with soft-deleted ones), every page. */
export const allBuyers = (api: Api) => allPages(api, "/api/v1/buyers", "buyers", { showDeleted: "true" });

/** GET /api/v1/leads, every page (a manager or admin sees every lead of the tenant). */
export const allLeads = (api: Api) => allPages(api, "/api/v1/leads", "leads");

/** GET /api/v1/buyers/{id}/ledgerEntries, every page, newest first. */
export const ledgerEntries = (api: Api, buyerId: string) => allPages(api, `/api/v1/buyers/${buyerId}/ledgerEntries`, "ledgerEntries");

/** GET /api/v1/buyers/{id}/sales ("-": every buyer), every page, with an optional AIP-160 filter. */
export const leadSales = (api: Api, buyerId: string, filter?: string) =>
  allPages(api, `/api/v1/buyers/${buyerId}/sales`, "leadSales", filter ? { filter } : {});

/** The skip reasons of a FAILED_PRECONDITION "no buyer can take lead" body, as "buyers/<id> REASON". */
export function skipReasons(body: { details?: Array<Record<string, unknown>> } | undefined): string[] {
  const failure = body?.details?.find((detail) => String(detail["@type"]).endsWith("google.rpc.PreconditionFailure")) as
    | { violations?: Array<{ type: string; subject: string; description: string }> }
    | undefined;
  return (failure?.violations ?? [])
    .filter((violation) => violation.type === "BUYER_SKIPPED")
    .map((violation) => `${violation.subject} ${violation.description.split(":")[0]}`);
}

export const minor = (amount: { amountMinor?: string } | undefined) => BigInt(amount?.amountMinor ?? "0");
