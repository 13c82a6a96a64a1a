import { Controller, Get, ServiceUnavailableException } from "@nestjs/common";
import { InjectConnection } from "@nestjs/mongoose";
import { type Connection, ConnectionStates } from "mongoose";
import { Public } from "./auth/caller";

/** GET /healthz: 200 once the database connection is up (the bench waits for it). */
@Controller("healthz")
export class HealthController {
  constructor(@InjectConnection() private readonly connection: Connection) {}

  @Public()
  @Get()
  check() {
    if (this.connection.readyState !== ConnectionStates.connected) throw new ServiceUnavailableException("database not connected");
    return { status: "ok" };
  }
}
