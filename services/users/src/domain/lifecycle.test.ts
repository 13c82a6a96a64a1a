import { UserStatus } from "@leadmesh/contracts/users/v1/user";
import { reasonOf } from "../../test/fixtures";
import { checkNotDeleted, type LifecycleAction, nextStatus } from "./lifecycle";

const { USER_STATUS_INVITED: INVITED, USER_STATUS_ACTIVE: ACTIVE, USER_STATUS_SUSPENDED: SUSPENDED, USER_STATUS_DELETED: DELETED } = UserStatus;

describe("nextStatus", () => {
  const allowed: [LifecycleAction, UserStatus, UserStatus][] = [
    ["activate", INVITED, ACTIVE],
    ["suspend", ACTIVE, SUSPENDED],
    ["reactivate", SUSPENDED, ACTIVE],
    ["delete", INVITED, DELETED],
    ["delete", ACTIVE, DELETED],
    ["delete", SUSPENDED, DELETED],
  ];
  it.each(allowed)("%s: %s → %s", (action, from, to) => {
    expect(nextStatus("u1", from, action)).toBe(to);
  });

  it("is a no-op for activate on ACTIVE and delete on DELETED", () => {
    expect(nextStatus("u1", ACTIVE, "activate")).toBeUndefined();
    expect(nextStatus("u1", DELETED, "delete")).toBeUndefined();
  });

  const refused: [LifecycleAction, UserStatus][] = [
    ["suspend", INVITED],
    ["suspend", SUSPENDED],
    ["suspend", DELETED],
    ["reactivate", ACTIVE],
    ["reactivate", INVITED],
    ["reactivate", DELETED],
    ["activate", SUSPENDED],
    ["activate", DELETED],
  ];
  it.each(refused)("refuses %s from %s", (action, from) => {
    expect(reasonOf(() => nextStatus("u1", from, action))).toBe("FAILED_PRECONDITION");
  });

  it("says what state would be needed", () => {
    expect(() => nextStatus("u1", INVITED, "suspend")).toThrow('cannot suspend user "u1": it is INVITED, and only a user that is ACTIVE can be');
  });
});

describe("checkNotDeleted", () => {
  it("refuses changes to deleted users only", () => {
    expect(reasonOf(() => checkNotDeleted("u1", DELETED))).toBe("FAILED_PRECONDITION");
    expect(() => checkNotDeleted("u1", SUSPENDED)).not.toThrow();
  });
});
