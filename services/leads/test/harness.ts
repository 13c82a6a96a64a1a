import { leadClient } from "../../../test/harness/clients";
import { startInProcess } from "../../../test/harness/in-process";
import { startLeads } from "../src/main";

/** The leads service in-process on the test mesh's FerretDB and Redis, serving mTLS with its own certificate; a caller such as buyers connects with its certificate (serviceClient in test/harness/clients.ts). */
export const startLeadsForTest = () => startInProcess("leads", startLeads);

export { leadClient };
