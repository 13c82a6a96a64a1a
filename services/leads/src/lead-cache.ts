/**
 * GetLead's read cache (platform ReadCache): leads as the API returns them,
 * protobuf-encoded, behind their revision (the etag). Keys
 * `cache:leads:lead:<tenant>:<id>`.
 *
 * Deletes are soft (AIP-164): GetLead of a deleted lead answers it with its
 * delete_time, so a delete puts that deleted lead at its new revision, which
 * no older fill can replace; nothing in leads deletes for good, so leads
 * write no tombstones.
 */
import { Lead } from "@leadmesh/contracts/leads/v1/lead";
import { type Logger, ReadCache, type RedisHandle, type ResourceCodec } from "@leadmesh/platform";

export const leadCodec: ResourceCodec<Lead> = {
  encode: (lead) => Lead.encode(lead).finish(),
  decode: (bytes) => Lead.decode(bytes),
  revisionOf: (lead) => revisionOfEtag(lead.etag),
  tenantOf: (lead) => lead.tenantId,
};

function revisionOfEtag(etag: string): number {
  const revision = Number(etag);
  if (!Number.isSafeInteger(revision) || revision < 1) throw new Error(`lead etag "${etag}" is not a revision`);
  return revision;
}

export function leadReadCache(redis: RedisHandle["redis"], logger: Logger): ReadCache<Lead> {
  return new ReadCache({ redis, service: "leads", resource: "lead", codec: leadCodec, logger });
}
