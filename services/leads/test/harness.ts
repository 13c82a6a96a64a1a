import { leadClient } from "../../../test/harness/clients";
import { startInProcess } from "../../../test/harness/in-process";
import { startLeads } from "../src/main";

/** The leads service in-process on the test mesh's FerretDB and Redis; buyers may call it with service tokens. */
export const startLeadsForTest = () => startInProcess("leads", startLeads);

export { leadClient };
