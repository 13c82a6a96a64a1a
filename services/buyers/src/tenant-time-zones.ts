/**
 * The tenant's IANA time zone (users.v1.Tenant.time_zone), in which buyers'
 * daily and monthly caps reset. Asked of the users service as the buyers
 * service itself (its certificate, the tenant in leadmesh-tenant metadata;
 * topology: buyers calls users [TenantService.GetTenant]) and kept per
 * tenant for CACHE_MS.
 *
 * Stated bound: a tenant's change of time zone reaches this replica's cap
 * counting within CACHE_MS (60 s). A tenant without a zone, or unknown to
 * the users service, counts in UTC. When the users service cannot answer,
 * the last zone known for the tenant is used (logged), and without one the
 * call fails UNAVAILABLE: counting caps in a guessed zone could let a buyer
 * exceed its cap.
 */
import { TenantServiceDefinition } from "@leadmesh/contracts/users/v1/tenants";
import { callOptionsFrom, createServiceClient, DependencyUnavailableError, type Logger, type MeshTransport, TENANT_HEADER } from "@leadmesh/platform";
import { type CallContext, ClientError, Metadata, Status } from "nice-grpc-common";
import { DEFAULT_TIME_ZONE, isKnownTimeZone } from "./domain/calendar";

export const CACHE_MS = 60_000;
const USERS_DEADLINE_MS = 2_000;

/** Where the handlers and sales get a tenant's zone from (tests substitute a fixed one). */
export interface TimeZoneSource {
  zoneOf(tenantId: string, context?: CallContext): Promise<string>;
}

/** Looks up one tenant's raw time_zone; undefined when the tenant does not exist. */
export type TenantZoneLookup = (tenantId: string, context: CallContext | undefined) => Promise<string | undefined>;

interface Known {
  zone: string;
  fetchedAt: number;
}

export class TenantTimeZones implements TimeZoneSource {
  private readonly known = new Map<string, Known>();
  /** One lookup per tenant at a time: concurrent callers share it. */
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(
    private readonly lookup: TenantZoneLookup,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  async zoneOf(tenantId: string, context?: CallContext): Promise<string> {
    const known = this.known.get(tenantId);
    if (known && this.clock() - known.fetchedAt < CACHE_MS) return known.zone;
    let pending = this.inFlight.get(tenantId);
    if (!pending) {
      pending = this.refresh(tenantId, context).finally(() => this.inFlight.delete(tenantId));
      this.inFlight.set(tenantId, pending);
    }
    return pending;
  }

  private async refresh(tenantId: string, context: CallContext | undefined): Promise<string> {
    const startedAt = this.clock();
    let raw: string | undefined;
    try {
      raw = await this.lookup(tenantId, context);
    } catch (error) {
      const stale = this.known.get(tenantId);
      const detail = error instanceof ClientError ? `${Status[error.code]}: ${error.details}` : String(error);
      if (stale) {
        this.logger.warn(
          { tenantId, zone: stale.zone, ageMs: startedAt - stale.fetchedAt, error: detail },
          "users unavailable: counting caps in the tenant's last known time zone",
        );
        return stale.zone;
      }
      this.logger.warn({ tenantId, error: detail }, "users unavailable: the tenant's time zone is unknown");
      throw new DependencyUnavailableError("users (the tenant's time zone)", 1000);
    }
    let zone = raw === undefined || raw === "" ? DEFAULT_TIME_ZONE : raw;
    if (!isKnownTimeZone(zone)) {
      this.logger.warn({ tenantId, zone }, "tenant time zone unknown to this runtime: counting caps in UTC");
      zone = DEFAULT_TIME_ZONE;
    }
    this.known.set(tenantId, { zone, fetchedAt: startedAt });
    return zone;
  }
}

/** A lookup through the users service's TenantService.GetTenant, as the buyers service acting in the tenant. */
export function usersTenantZoneLookup(usersAddress: string, transport: MeshTransport): { lookup: TenantZoneLookup; close(): void } {
  const tenants = createServiceClient(TenantServiceDefinition, usersAddress, { transport, peer: "users", defaultDeadlineMs: USERS_DEADLINE_MS });
  const lookup: TenantZoneLookup = async (tenantId, context) => {
    // The upstream deadline bounds the lookup, but not its cancellation: concurrent callers share one lookup (TenantTimeZones.inFlight).
    const options = context
      ? { ...callOptionsFrom(context, { tenant: tenantId, deadlineMs: USERS_DEADLINE_MS }), signal: undefined }
      : { metadata: Metadata({ [TENANT_HEADER]: tenantId }) };
    try {
      const { tenant } = await tenants.client.getTenant({ id: tenantId }, options);
      return tenant?.timeZone ?? "";
    } catch (error) {
      if (error instanceof ClientError && error.code === Status.NOT_FOUND) return undefined;
      throw error;
    }
  };
  return { lookup, close: () => tenants.close() };
}
