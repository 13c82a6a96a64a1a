/**
 * The NestJS + Mongoose monolith that leadmesh replaces, reduced to its
 * leads endpoints, as the bench's side-by-side baseline (bench/monolith.ts
 * builds and starts it):
 *
 *   npx tsc -p bench/monolith && node bench/monolith/dist/main.js
 *
 * Environment: MONOLITH_PORT, MONOLITH_HOST (127.0.0.1), MONGO_URL,
 * MONGO_DATABASE, JWT_PUBLIC_KEY_FILE (PEM), JWT_ISSUER, JWT_AUDIENCE.
 */
import "reflect-metadata";
import { ValidationPipe } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { AppModule } from "./app.module";
import { loadConfig } from "./config";

async function bootstrap(): Promise<void> {
  const config = loadConfig(process.env);
  const app = await NestFactory.create(AppModule.forRoot(config), { logger: ["error", "warn", "log"] });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, transform: true }));
  app.enableShutdownHooks();
  await app.listen(config.port, config.host);
}

bootstrap().catch((error: unknown) => {
  console.error("monolith failed to start:", error);
  process.exit(1);
});
