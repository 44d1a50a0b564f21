import { PrismaClient } from "@prisma/client";

// `next dev` re-evaluates modules on every edit; keeping the client on
// globalThis stops each reload from opening a new connection pool until
// the database refuses connections. Production evaluates this module once.
const globalForPrisma = globalThis as unknown as { prisma?: PrismaClient };

export const prisma = globalForPrisma.prisma ?? new PrismaClient();

if (process.env.NODE_ENV !== "production") {
  globalForPrisma.prisma = prisma;
}
