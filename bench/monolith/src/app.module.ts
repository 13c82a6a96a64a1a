import { type DynamicModule, Module } from "@nestjs/common";
import { APP_GUARD } from "@nestjs/core";
import { JwtModule } from "@nestjs/jwt";
import { MongooseModule } from "@nestjs/mongoose";
import { JwtAuthGuard } from "./auth/jwt-auth.guard";
import type { MonolithConfig } from "./config";
import { HealthController } from "./health.controller";
import { LeadsModule } from "./leads/leads.module";

@Module({})
export class AppModule {
  static forRoot(config: MonolithConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        MongooseModule.forRoot(config.mongoUrl, { dbName: config.mongoDatabase, serverSelectionTimeoutMS: 10_000 }),
        JwtModule.register({
          publicKey: config.jwtPublicKey,
          verifyOptions: { algorithms: ["RS256"], issuer: config.jwtIssuer, audience: config.jwtAudience },
        }),
        LeadsModule,
      ],
      controllers: [HealthController],
      // Global: every route needs a valid token unless marked @Public().
      providers: [{ provide: APP_GUARD, useClass: JwtAuthGuard }],
    };
  }
}
