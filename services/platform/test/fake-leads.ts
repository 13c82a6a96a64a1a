import type { LeadServiceImplementation } from "@leadmesh/contracts/leads/v1/leads";
import type { CallerContext } from "../src";

/**
 * A LeadService for the kernel's tests (the kernel needs some generated
 * service to serve): the given handlers, and every other RPC failing loudly.
 */
export function fakeLeads(handlers: Partial<LeadServiceImplementation<CallerContext>>): LeadServiceImplementation<CallerContext> {
  const unused = async (): Promise<never> => {
    throw new Error("not used by this test");
  };
  return {
    getLead: unused,
    listLeads: unused,
    createLead: unused,
    updateLead: unused,
    deleteLead: unused,
    undeleteLead: unused,
    listLeadActivities: unused,
    createLeadActivity: unused,
    batchGetLeads: unused,
    distributeLead: unused,
    releaseLeadSale: unused,
    ...handlers,
  };
}
